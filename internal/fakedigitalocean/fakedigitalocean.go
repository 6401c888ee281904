// Package fakedigitalocean is a stand-in for DigitalOcean's API, for tests:
// the reserved-IP and droplet endpoints debship's resource agent and fence
// agent use, and the droplet metadata service. It follows DigitalOcean's API
// documentation, not observed behaviour:
//
//   - Reserved IPs: https://docs.digitalocean.com/reference/api/digitalocean/#tag/Reserved-IPs
//     GET /v2/reserved_ips/{ip} → 200 {"reserved_ip": {"ip", "droplet": {...} | null, "region", "locked", "project_id"}}
//   - Reserved IP actions: https://docs.digitalocean.com/reference/api/digitalocean/#tag/Reserved-IP-Actions
//     POST /v2/reserved_ips/{ip}/actions {"type": "assign", "droplet_id": N} → 201 {"action": {...}}
//     GET /v2/reserved_ips/{ip}/actions/{action_id} → 200 {"action": {...}}
//   - Droplets: https://docs.digitalocean.com/reference/api/digitalocean/#tag/Droplets
//     GET /v2/droplets?page=&per_page=&tag_name=|name= → 200 {"droplets": [...], "links": {"pages": {"first", "prev", "next", "last"}}, "meta": {"total": N}}
//     (per_page default 20, at most 200; tag_name and name cannot be combined)
//     GET /v2/droplets/{id} → 200 {"droplet": {"id", "name", "status": "new"|"active"|"off"|"archive", "tags", ...}}
//   - Droplet actions: https://docs.digitalocean.com/reference/api/digitalocean/#tag/Droplet-Actions
//     POST /v2/droplets/{id}/actions {"type": "power_off"|"power_on"|"shutdown"|"power_cycle"} → 201 {"action": {...}}
//     GET /v2/droplets/{id}/actions/{action_id} → 200 {"action": {...}}
//   - Actions: https://docs.digitalocean.com/reference/api/digitalocean/#tag/Actions
//     GET /v2/actions/{action_id} → 200 {"action": {"id", "status": "in-progress"|"completed"|"errored", "type", "resource_id", "resource_type", ...}}
//   - Errors: https://docs.digitalocean.com/reference/api/digitalocean/#section/Introduction/Responses
//     {"id": "not_found", "message": "..."}; 401 "Unauthorized" without a valid
//     "Authorization: Bearer" token; 404 for an unknown resource; 422
//     "unprocessable_entity" for an invalid action or while the IP is locked by
//     an action; 429 "too_many_requests"; every answer has the ratelimit-limit,
//     ratelimit-remaining and ratelimit-reset headers
//     (https://docs.digitalocean.com/reference/api/digitalocean/#section/Introduction/Rate-Limit)
//   - Metadata: https://docs.digitalocean.com/reference/api/metadata/
//     GET /metadata/v1/id → the droplet id as text (Metadata, or this
//     server for the droplet whose address asks: SetDropletAddress)
//
// Actions are asynchronous as DigitalOcean's are: an action is in-progress
// until it has been polled pollsToComplete times and its hook (Hooks: a
// lab test makes them act on lab nodes) returned.
//
// Everything a test changes or reads goes through methods that take the
// server's lock: the requests are served on other goroutines, answering
// agents that run as other processes.
package fakedigitalocean

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Server is the fake API.
type Server struct {
	*httptest.Server

	mu    sync.Mutex
	token string
	// addrs maps a droplet's private address to it: /metadata/v1/id on
	// this server answers the asking droplet's id (the lab's droplets have
	// no 169.254.169.254).
	addrs    map[string]int
	ips      map[string]*reservedIP
	droplets map[int]*Droplet
	actions  map[int]*action
	nextID   int
	// failNext requests answer failStatus (FailNext).
	failStatus int
	failNext   int
	fault      fault
	// requests records "METHOD PATH" of every API request.
	requests []string
	// done records every completed action.
	done      []Action
	remaining int
	hooks     Hooks
}

// Hooks run when an action is carried out, before it reports completed;
// an error makes the action "errored". They run without the server's
// lock, one goroutine per action. A nil hook does nothing.
type Hooks struct {
	Assign   func(ip string, droplet int) error
	PowerOff func(droplet int) error
	PowerOn  func(droplet int) error
}

// Droplet is a droplet of the fake account.
type Droplet struct {
	ID     int
	Name   string
	Status string // "active" or "off"
	Tags   []string
}

// Action is a completed action: its type ("assign_ip", "power_off",
// "power_on", "shutdown", "power_cycle") and the resource it acted on.
type Action struct {
	ID           int
	Type         string
	ResourceType string // "droplet" or "reserved_ip"
	ResourceID   int    // the droplet
	IP           string // reserved_ip actions
	Status       string
}

const (
	// pollsToComplete is how many GETs of an action see it in progress.
	pollsToComplete = 2
	// rateLimit is the ratelimit-limit header: DigitalOcean's 5000 per hour.
	rateLimit = 5000
)

type reservedIP struct {
	IP      string
	Droplet int // 0: unassigned
	Locked  bool
}

type action struct {
	Action
	Polls    int
	Started  time.Time
	hookDone bool
	hookErr  error
	complete bool
	// onComplete changes the droplet once the action completed.
	onComplete func()
}

type fault struct {
	status int // 0: hang
	until  time.Time
}

// NewServer starts a fake API on loopback with the given reserved IPs
// (unassigned).
func NewServer(token string, ips ...string) *Server {
	s := newServer(token, ips)
	s.Server = httptest.NewServer(http.HandlerFunc(s.handle))
	return s
}

// NewServerOn starts the fake API on a listener of the caller's (a lab
// test's: the host's address on the lab bridge).
func NewServerOn(l net.Listener, token string, ips ...string) *Server {
	s := newServer(token, ips)
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.handle))
	s.Server.Listener.Close()
	s.Server.Listener = l
	s.Server.Start()
	return s
}

func newServer(token string, ips []string) *Server {
	s := &Server{token: token, ips: map[string]*reservedIP{}, droplets: map[int]*Droplet{}, addrs: map[string]int{}, actions: map[int]*action{},
		nextID: 1000, remaining: rateLimit}
	for _, ip := range ips {
		s.ips[ip] = &reservedIP{IP: ip}
	}
	return s
}

// AddDroplet adds an active droplet.
func (s *Server) AddDroplet(id int, name string, tags ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.droplets[id] = &Droplet{ID: id, Name: name, Status: "active", Tags: tags}
}

// SetDropletAddress says which droplet asks from addr (metadata service).
func (s *Server) SetDropletAddress(id int, addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addrs[addr] = id
}

// DropletStatus returns a droplet's status ("" when there is no such droplet).
func (s *Server) DropletStatus(id int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.droplets[id]; d != nil {
		return d.Status
	}
	return ""
}

// SetDropletStatus changes a droplet's status as the console would.
func (s *Server) SetDropletStatus(id int, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.droplets[id]; d != nil {
		d.Status = status
	}
}

// Holder returns the droplet the IP is assigned to (0: none).
func (s *Server) Holder(ip string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.ips[ip]; r != nil {
		return r.Droplet
	}
	return 0
}

// Actions returns the completed (or errored) actions in order.
func (s *Server) Actions() []Action {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.done)
}

// Requests returns "METHOD PATH" of every API request so far, in order.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Count returns how many requests match "METHOD PATH".
func (s *Server) Count(req string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if r == req {
			n++
		}
	}
	return n
}

// Fail makes every API request fail for d: with status (429 or 5xx), or,
// with status 0, by not answering until d has passed (a hung API).
func (s *Server) Fail(status int, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = fault{status: status, until: time.Now().Add(d)}
}

// FailNext makes the next n API requests answer with status (429 or
// 5xx: the agent retries; 422: the IP is locked, which only answers
// requests for new actions). Counted, not timed: however late the agent
// comes, it meets the failures.
func (s *Server) FailNext(status, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failStatus, s.failNext = status, n
}

// SetHooks sets what carries out the actions started from now on.
func (s *Server) SetHooks(h Hooks) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks = h
}

// SetToken replaces the valid token: the old one is revoked.
func (s *Server) SetToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = token
}

func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	if s.remaining > 0 {
		s.remaining--
	}
	reset := time.Now().Add(time.Minute)
	if status == http.StatusTooManyRequests {
		// Rate limited until the fault ends (at least a second).
		reset = time.Now().Add(time.Second)
		if s.fault.until.After(reset) {
			reset = s.fault.until
		}
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("ratelimit-limit", strconv.Itoa(rateLimit))
	w.Header().Set("ratelimit-remaining", strconv.Itoa(s.remaining))
	w.Header().Set("ratelimit-reset", strconv.FormatInt(reset.Unix(), 10))
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (s *Server) apiError(w http.ResponseWriter, status int, id, msg string) {
	s.writeJSON(w, status, map[string]string{"id": id, "message": msg})
}

func (s *Server) notFound(w http.ResponseWriter) {
	s.apiError(w, http.StatusNotFound, "not_found", "The resource you were accessing could not be found.")
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	// The metadata service is not the API: its faults do not reach it.
	if r.URL.Path == "/metadata/v1/id" {
		defer s.mu.Unlock()
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		if id, ok := s.addrs[host]; ok {
			fmt.Fprintf(w, "%d", id)
			return
		}
		http.NotFound(w, r)
		return
	}
	s.requests = append(s.requests, r.Method+" "+r.URL.Path)
	if f := s.fault; time.Now().Before(f.until) && f.status == 0 {
		s.mu.Unlock()
		select {
		case <-r.Context().Done():
		case <-time.After(time.Until(f.until)):
		}
		// No answer at all: a handler that just returned would answer 200
		// with an empty body.
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
			}
		}
		return
	}
	defer s.mu.Unlock()
	if f := s.fault; time.Now().Before(f.until) {
		s.failWith(w, f.status)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+s.token {
		s.apiError(w, http.StatusUnauthorized, "Unauthorized", "Unable to authenticate you")
		return
	}
	// 422 (locked) only answers requests for new actions.
	if s.failNext > 0 && (s.failStatus != http.StatusUnprocessableEntity || r.Method == http.MethodPost) {
		s.failNext--
		s.failWith(w, s.failStatus)
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) < 2 || parts[0] != "v2" {
		s.notFound(w)
		return
	}
	switch parts[1] {
	case "reserved_ips":
		s.reservedIPs(w, r, parts[2:])
	case "droplets":
		s.dropletsAPI(w, r, parts[2:])
	case "actions":
		if len(parts) != 3 || r.Method != http.MethodGet {
			s.notFound(w)
			return
		}
		id, _ := strconv.Atoi(parts[2])
		a := s.actions[id]
		if a == nil {
			s.notFound(w)
			return
		}
		s.writeJSON(w, http.StatusOK, map[string]any{"action": s.poll(a)})
	default:
		s.notFound(w)
	}
}

func (s *Server) failWith(w http.ResponseWriter, status int) {
	switch status {
	case http.StatusTooManyRequests:
		s.remaining = 0
		s.writeJSON(w, status, map[string]string{"id": "too_many_requests", "message": "API Rate limit exceeded."})
	case http.StatusUnprocessableEntity:
		s.apiError(w, status, "unprocessable_entity", "The reserved IP is currently locked by another action.")
	default:
		s.apiError(w, status, "server_error", "Unexpected server-side error")
	}
}

func decodeAction(w http.ResponseWriter, r *http.Request) (typ string, droplet int, ok bool) {
	var body struct {
		Type      string `json:"type"`
		DropletID int    `json:"droplet_id"`
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") || json.NewDecoder(r.Body).Decode(&body) != nil {
		return "", 0, false
	}
	return body.Type, body.DropletID, true
}

func (s *Server) reservedIPs(w http.ResponseWriter, r *http.Request, parts []string) {
	if len(parts) == 0 {
		s.notFound(w)
		return
	}
	ip := s.ips[parts[0]]
	if ip == nil {
		s.notFound(w)
		return
	}
	switch {
	case len(parts) == 1 && r.Method == http.MethodGet:
		s.writeJSON(w, http.StatusOK, map[string]any{"reserved_ip": s.ipJSON(ip)})
	case len(parts) == 2 && parts[1] == "actions" && r.Method == http.MethodPost:
		typ, droplet, ok := decodeAction(w, r)
		if !ok {
			s.apiError(w, http.StatusBadRequest, "bad_request", "invalid JSON body")
			return
		}
		if typ != "assign" || droplet <= 0 {
			s.apiError(w, http.StatusUnprocessableEntity, "unprocessable_entity", "droplet_id is required for assign")
			return
		}
		if len(s.droplets) > 0 && s.droplets[droplet] == nil {
			s.apiError(w, http.StatusUnprocessableEntity, "unprocessable_entity", "Droplet not found")
			return
		}
		if ip.Locked {
			s.apiError(w, http.StatusUnprocessableEntity, "unprocessable_entity", "The reserved IP is currently locked by another action.")
			return
		}
		ip.Locked = true
		assign, addr := s.hooks.Assign, ip.IP
		a := s.start(Action{Type: "assign_ip", ResourceType: "reserved_ip", ResourceID: droplet, IP: addr}, func() error {
			if assign != nil {
				return assign(addr, droplet)
			}
			return nil
		})
		s.writeJSON(w, http.StatusCreated, map[string]any{"action": s.actionJSON(a)})
	case len(parts) == 3 && parts[1] == "actions" && r.Method == http.MethodGet:
		id, _ := strconv.Atoi(parts[2])
		a := s.actions[id]
		if a == nil || a.IP != ip.IP {
			s.notFound(w)
			return
		}
		s.writeJSON(w, http.StatusOK, map[string]any{"action": s.poll(a)})
	default:
		s.apiError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed")
	}
}

func (s *Server) dropletsAPI(w http.ResponseWriter, r *http.Request, parts []string) {
	if len(parts) == 0 {
		if r.Method != http.MethodGet {
			s.apiError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed")
			return
		}
		s.listDroplets(w, r)
		return
	}
	id, _ := strconv.Atoi(parts[0])
	d := s.droplets[id]
	if d == nil {
		s.notFound(w)
		return
	}
	switch {
	case len(parts) == 1 && r.Method == http.MethodGet:
		s.writeJSON(w, http.StatusOK, map[string]any{"droplet": dropletJSON(d)})
	case len(parts) == 2 && parts[1] == "actions" && r.Method == http.MethodPost:
		typ, _, ok := decodeAction(w, r)
		if !ok {
			s.apiError(w, http.StatusBadRequest, "bad_request", "invalid JSON body")
			return
		}
		var hook func(int) error
		to := ""
		switch typ {
		case "power_off", "shutdown":
			hook, to = s.hooks.PowerOff, "off"
		case "power_on":
			hook, to = s.hooks.PowerOn, "active"
		case "power_cycle":
			to = "active"
			if s.hooks.PowerOff != nil && s.hooks.PowerOn != nil {
				off, on := s.hooks.PowerOff, s.hooks.PowerOn
				hook = func(id int) error {
					if err := off(id); err != nil {
						return err
					}
					return on(id)
				}
			}
		default:
			s.apiError(w, http.StatusUnprocessableEntity, "unprocessable_entity", fmt.Sprintf("%q is not a droplet action type", typ))
			return
		}
		for _, a := range s.actions {
			if a.ResourceType == "droplet" && a.ResourceID == id && !a.complete {
				s.apiError(w, http.StatusUnprocessableEntity, "unprocessable_entity", "Droplet already has a pending event.")
				return
			}
		}
		a := s.start(Action{Type: typ, ResourceType: "droplet", ResourceID: id}, func() error {
			if hook != nil {
				return hook(id)
			}
			return nil
		})
		a.onComplete = func() { d.Status = to }
		s.writeJSON(w, http.StatusCreated, map[string]any{"action": s.actionJSON(a)})
	case len(parts) == 3 && parts[1] == "actions" && r.Method == http.MethodGet:
		aid, _ := strconv.Atoi(parts[2])
		a := s.actions[aid]
		if a == nil || a.ResourceType != "droplet" || a.ResourceID != id {
			s.notFound(w)
			return
		}
		s.writeJSON(w, http.StatusOK, map[string]any{"action": s.poll(a)})
	default:
		s.apiError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed")
	}
}

func (s *Server) listDroplets(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page, perPage := 1, 20
	if v := q.Get("page"); v != "" {
		page, _ = strconv.Atoi(v)
	}
	if v := q.Get("per_page"); v != "" {
		perPage, _ = strconv.Atoi(v)
	}
	if page < 1 || perPage < 1 || perPage > 200 {
		s.apiError(w, http.StatusBadRequest, "bad_request", "page must be at least 1 and per_page between 1 and 200")
		return
	}
	tag, name := q.Get("tag_name"), q.Get("name")
	if tag != "" && name != "" {
		s.apiError(w, http.StatusUnprocessableEntity, "unprocessable_entity", "tag_name can not be combined with name")
		return
	}
	var all []*Droplet
	for _, d := range s.droplets {
		if (tag == "" || slices.Contains(d.Tags, tag)) && (name == "" || strings.EqualFold(d.Name, name)) {
			all = append(all, d)
		}
	}
	slices.SortFunc(all, func(a, b *Droplet) int { return a.ID - b.ID })
	last := max(1, (len(all)+perPage-1)/perPage)
	list := []map[string]any{}
	for i := (page - 1) * perPage; i < len(all) && i < page*perPage; i++ {
		list = append(list, dropletJSON(all[i]))
	}
	link := func(p int) string {
		v := url.Values{}
		for k := range q {
			v.Set(k, q.Get(k))
		}
		v.Set("page", strconv.Itoa(p))
		v.Set("per_page", strconv.Itoa(perPage))
		return "http://" + r.Host + "/v2/droplets?" + v.Encode()
	}
	pages := map[string]string{}
	if page > 1 {
		pages["first"], pages["prev"] = link(1), link(page-1)
	}
	if page < last {
		pages["next"], pages["last"] = link(page+1), link(last)
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"droplets": list, "links": map[string]any{"pages": pages},
		"meta": map[string]any{"total": len(all)}})
}

func dropletJSON(d *Droplet) map[string]any {
	tags := d.Tags
	if tags == nil {
		tags = []string{}
	}
	return map[string]any{"id": d.ID, "name": d.Name, "status": d.Status, "memory": 1024, "vcpus": 1, "disk": 25,
		"locked": false, "tags": tags, "region": map[string]any{"slug": "fra1", "name": "Frankfurt 1"},
		"vpc_uuid": "5a4981aa-9653-4bd1-bef5-d6bff52042e4"}
}

// start records a new action and runs its hook in the background.
func (s *Server) start(a Action, hook func() error) *action {
	s.nextID++
	a.ID = s.nextID
	act := &action{Action: a, Started: time.Now()}
	s.actions[act.ID] = act
	go func() {
		err := hook()
		s.mu.Lock()
		defer s.mu.Unlock()
		act.hookDone, act.hookErr = true, err
	}()
	return act
}

// poll is one GET of an action: it completes once polled often enough
// and its hook is done.
func (s *Server) poll(a *action) map[string]any {
	a.Polls++
	if !a.complete && a.hookDone && a.Polls >= pollsToComplete {
		a.complete = true
		a.Status = "completed"
		if a.hookErr != nil {
			a.Status = "errored"
		} else if a.IP != "" {
			s.ips[a.IP].Droplet = a.ResourceID
		} else if a.onComplete != nil {
			a.onComplete()
		}
		if a.IP != "" {
			s.ips[a.IP].Locked = false
		}
		s.done = append(s.done, a.Action)
	}
	return s.actionJSON(a)
}

func (s *Server) ipJSON(ip *reservedIP) map[string]any {
	var droplet any
	if ip.Droplet != 0 {
		name := fmt.Sprintf("droplet-%d", ip.Droplet)
		if d := s.droplets[ip.Droplet]; d != nil {
			name = d.Name
		}
		droplet = map[string]any{"id": ip.Droplet, "name": name, "status": "active"}
	}
	return map[string]any{"ip": ip.IP, "droplet": droplet, "region": map[string]any{"slug": "fra1", "name": "Frankfurt 1"},
		"locked": ip.Locked, "project_id": "746c6152-2fa2-11ed-92d3-27aaa54e4988"}
}

func (s *Server) actionJSON(a *action) map[string]any {
	status, completed := "in-progress", any(nil)
	if a.complete {
		status, completed = a.Status, time.Now().UTC().Format(time.RFC3339)
	}
	resource := a.ResourceID
	if a.IP != "" {
		resource = 758604968
	}
	return map[string]any{"id": a.ID, "status": status, "type": a.Type, "started_at": a.Started.UTC().Format(time.RFC3339),
		"completed_at": completed, "resource_id": resource, "resource_type": a.ResourceType, "region_slug": "fra1"}
}

// Metadata is a droplet's metadata service.
func Metadata(dropletID int) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metadata/v1/id" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "%d", dropletID)
	}))
}
