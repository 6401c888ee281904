// Package dotest is a fake DigitalOcean API for tests: the reserved-IP
// endpoints debship's resource agent uses, and the droplet metadata service.
// It follows DigitalOcean's documentation:
//
//   - Reserved IPs: https://docs.digitalocean.com/reference/api/digitalocean/#tag/Reserved-IPs
//     GET /v2/reserved_ips/{ip} → 200 {"reserved_ip": {"ip", "droplet": {...} | null, "region", "locked", "project_id"}}
//   - Reserved IP actions: https://docs.digitalocean.com/reference/api/digitalocean/#tag/Reserved-IP-Actions
//     POST /v2/reserved_ips/{ip}/actions {"type": "assign", "droplet_id": N} → 201 {"action": {...}}
//     GET /v2/reserved_ips/{ip}/actions/{action_id} → 200 {"action": {...}}
//   - Errors: https://docs.digitalocean.com/reference/api/digitalocean/#section/Introduction/Responses
//     {"id": "not_found", "message": "..."}; 401 "Unauthorized" without a valid
//     "Authorization: Bearer" token; 422 "unprocessable_entity" while the IP
//     is locked by an action; 429 "too_many_requests" with ratelimit-* headers
//     (https://docs.digitalocean.com/reference/api/digitalocean/#section/Introduction/Rate-Limit)
//   - Metadata: https://docs.digitalocean.com/reference/api/metadata/
//     GET /metadata/v1/id → the droplet id as text
package dotest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Server is the fake API.
type Server struct {
	*httptest.Server
	Token string

	mu      sync.Mutex
	ips     map[string]*reservedIP
	actions map[int]*action
	nextID  int
	// PollsToComplete is how many GETs of an action see it in progress.
	PollsToComplete int
	// FailNext makes the next N API requests answer with this status (429
	// or 5xx: the agent retries; 422: the IP is locked).
	FailStatus int
	FailNext   int
	// Requests records "METHOD PATH" of every API request.
	Requests []string
}

type reservedIP struct {
	IP      string
	Droplet int // 0: unassigned
	Locked  bool
}

type action struct {
	ID       int
	IP       string
	Droplet  int
	Polls    int
	Started  time.Time
	complete bool
}

// NewServer starts a fake API with the given reserved IPs (unassigned).
func NewServer(token string, ips ...string) *Server {
	s := &Server{Token: token, ips: map[string]*reservedIP{}, actions: map[int]*action{}, nextID: 1000, PollsToComplete: 2}
	for _, ip := range ips {
		s.ips[ip] = &reservedIP{IP: ip}
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.handle))
	return s
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

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("ratelimit-limit", "5000")
	w.Header().Set("ratelimit-remaining", "4999")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func apiError(w http.ResponseWriter, status int, id, msg string) {
	writeJSON(w, status, map[string]string{"id": id, "message": msg})
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Requests = append(s.Requests, r.Method+" "+r.URL.Path)
	if r.Header.Get("Authorization") != "Bearer "+s.Token {
		apiError(w, http.StatusUnauthorized, "Unauthorized", "Unable to authenticate you")
		return
	}
	// 422 (locked) only answers requests for new actions.
	if s.FailNext > 0 && (s.FailStatus != http.StatusUnprocessableEntity || r.Method == http.MethodPost) {
		s.FailNext--
		switch s.FailStatus {
		case http.StatusTooManyRequests:
			w.Header().Set("ratelimit-reset", strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10))
			apiError(w, s.FailStatus, "too_many_requests", "API Rate limit exceeded.")
		case http.StatusUnprocessableEntity:
			apiError(w, s.FailStatus, "unprocessable_entity", "The reserved IP is currently locked by another action.")
		default:
			apiError(w, s.FailStatus, "server_error", "Unexpected server-side error")
		}
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) < 3 || parts[0] != "v2" || parts[1] != "reserved_ips" {
		apiError(w, http.StatusNotFound, "not_found", "The resource you were accessing could not be found.")
		return
	}
	ip := s.ips[parts[2]]
	if ip == nil {
		apiError(w, http.StatusNotFound, "not_found", "The resource you were accessing could not be found.")
		return
	}
	switch {
	case len(parts) == 3 && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, map[string]any{"reserved_ip": s.ipJSON(ip)})
	case len(parts) == 4 && parts[3] == "actions" && r.Method == http.MethodPost:
		var body struct {
			Type      string `json:"type"`
			DropletID int    `json:"droplet_id"`
		}
		if r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&body) != nil {
			apiError(w, http.StatusBadRequest, "bad_request", "invalid JSON body")
			return
		}
		if body.Type != "assign" || body.DropletID <= 0 {
			apiError(w, http.StatusUnprocessableEntity, "unprocessable_entity", "droplet_id is required for assign")
			return
		}
		if ip.Locked {
			apiError(w, http.StatusUnprocessableEntity, "unprocessable_entity", "The reserved IP is currently locked by another action.")
			return
		}
		s.nextID++
		a := &action{ID: s.nextID, IP: ip.IP, Droplet: body.DropletID, Started: time.Now()}
		s.actions[a.ID] = a
		ip.Locked = true
		writeJSON(w, http.StatusCreated, map[string]any{"action": s.actionJSON(a)})
	case len(parts) == 5 && parts[3] == "actions" && r.Method == http.MethodGet:
		id, _ := strconv.Atoi(parts[4])
		a := s.actions[id]
		if a == nil || a.IP != ip.IP {
			apiError(w, http.StatusNotFound, "not_found", "The resource you were accessing could not be found.")
			return
		}
		a.Polls++
		if !a.complete && a.Polls >= s.PollsToComplete {
			a.complete = true
			ip.Droplet = a.Droplet
			ip.Locked = false
		}
		writeJSON(w, http.StatusOK, map[string]any{"action": s.actionJSON(a)})
	default:
		apiError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed")
	}
}

func (s *Server) ipJSON(ip *reservedIP) map[string]any {
	var droplet any
	if ip.Droplet != 0 {
		droplet = map[string]any{"id": ip.Droplet, "name": fmt.Sprintf("droplet-%d", ip.Droplet), "status": "active"}
	}
	return map[string]any{"ip": ip.IP, "droplet": droplet, "region": map[string]any{"slug": "fra1", "name": "Frankfurt 1"},
		"locked": ip.Locked, "project_id": "746c6152-2fa2-11ed-92d3-27aaa54e4988"}
}

func (s *Server) actionJSON(a *action) map[string]any {
	status, completed := "in-progress", any(nil)
	if a.complete {
		status, completed = "completed", a.Started.Add(time.Second).UTC().Format(time.RFC3339)
	}
	return map[string]any{"id": a.ID, "status": status, "type": "assign_ip", "started_at": a.Started.UTC().Format(time.RFC3339),
		"completed_at": completed, "resource_id": 758604968, "resource_type": "reserved_ip", "region_slug": "fra1"}
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
