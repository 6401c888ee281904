package host

import (
	"context"
	"encoding/xml"
	"fmt"
	"sort"
	"strings"
	"time"

	"gitlab.com/debship/debship/cluster/transport"
)

// CrmMon is the part of `crm_mon --output-as=xml` debship reads: status,
// setup and the deploy's decisions.
type CrmMon struct {
	Summary struct {
		DC struct {
			Present bool   `xml:"present,attr"`
			Name    string `xml:"name,attr"`
			Quorum  bool   `xml:"with_quorum,attr"`
		} `xml:"current_dc"`
		Options struct {
			Maintenance bool `xml:"maintenance-mode,attr"`
		} `xml:"cluster_options"`
	} `xml:"summary"`
	Nodes []struct {
		Name        string `xml:"name,attr"`
		Online      bool   `xml:"online,attr"`
		Standby     bool   `xml:"standby,attr"`
		Maintenance bool   `xml:"maintenance,attr"`
		Unclean     bool   `xml:"unclean,attr"`
	} `xml:"nodes>node"`
	Resources []CrmResource `xml:"resources>resource"`
	Clones    []struct {
		ID        string        `xml:"id,attr"`
		Managed   string        `xml:"managed,attr"`
		Resources []CrmResource `xml:"resource"`
	} `xml:"resources>clone"`
	Failures []struct {
		OpKey      string `xml:"op_key,attr"`
		Node       string `xml:"node,attr"`
		ExitStatus string `xml:"exitstatus,attr"`
		ExitReason string `xml:"exitreason,attr"`
		Task       string `xml:"task,attr"`
		Status     string `xml:"status,attr"`
	} `xml:"failures>failure"`
}

// CrmResource is one resource (or clone instance) in crm_mon's XML.
type CrmResource struct {
	ID      string `xml:"id,attr"`
	Agent   string `xml:"resource_agent,attr"`
	Role    string `xml:"role,attr"`
	Active  bool   `xml:"active,attr"`
	Managed string `xml:"managed,attr"`
	Failed  bool   `xml:"failed,attr"`
	Nodes   []struct {
		Name string `xml:"name,attr"`
	} `xml:"node"`
}

// ParseCrmMon reads the output of `crm_mon --output-as=xml`.
func ParseCrmMon(b []byte) (*CrmMon, error) {
	var m CrmMon
	if err := xml.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("crm_mon: %w", err)
	}
	return &m, nil
}

// CrmMonXML is crm_mon's XML from the node: the cluster's state as
// pacemaker there sees it. ReadCrmMon parses it too; this is for callers
// that tell a node whose pacemaker does not answer from an answer they
// cannot read.
func CrmMonXML(ctx context.Context, t transport.Transport) ([]byte, error) {
	out, _, err := t.Run(ctx, "crm_mon --output-as=xml")
	return out, err
}

// ReadCrmMon asks pacemaker on the node for the cluster's state.
func ReadCrmMon(ctx context.Context, t transport.Transport) (*CrmMon, error) {
	out, err := CrmMonXML(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("read the cluster state: %w", err)
	}
	m, err := ParseCrmMon(out)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.Node(), err)
	}
	return m, nil
}

// Online reports whether pacemaker lists node as online.
func (m *CrmMon) Online(node string) bool {
	for _, n := range m.Nodes {
		if n.Name == node {
			return n.Online
		}
	}
	return false
}

// ClusterUp reports whether pacemaker answers on the node.
func ClusterUp(ctx context.Context, t transport.Transport) bool {
	_, _, err := t.Run(ctx, "crm_mon -1 >/dev/null 2>&1")
	return err == nil
}

// noSuchObject: cibadmin exits 105 (6 in older versions) when an xpath
// matches nothing.
func noSuchObject(err error) bool {
	c := transport.ExitCode(err)
	return c == 105 || c == 6
}

// QueryCIB returns the CIB's elements that match xpath, nil when there
// are none.
func QueryCIB(ctx context.Context, t transport.Transport, xpath string) ([]byte, error) {
	out, _, err := t.Run(ctx, "cibadmin --query --xpath "+q(xpath))
	if err != nil {
		if noSuchObject(err) {
			return nil, nil
		}
		return nil, err
	}
	return out, nil
}

// CreateInCIB adds an element below scope (e.g. crm_config). It fails if
// an element with the same id exists: pacemaker decides, so of two nodes
// that create the same id at once only one succeeds.
func CreateInCIB(ctx context.Context, t transport.Transport, scope, xmlText string) error {
	_, _, err := t.Run(ctx, "cibadmin --create --scope "+q(scope)+" --xml-text "+q(xmlText))
	return err
}

// DeleteFromCIB deletes the element xmlText names (by tag and id); one
// that does not exist is no error.
func DeleteFromCIB(ctx context.Context, t transport.Transport, xmlText string) error {
	_, _, err := t.Run(ctx, "cibadmin --delete --xml-text "+q(xmlText))
	if err != nil && !noSuchObject(err) {
		return err
	}
	return nil
}

// Primitive is a primitive resource as the CIB stores it.
type Primitive struct {
	ID       string `xml:"id,attr"`
	Class    string `xml:"class,attr"`
	Provider string `xml:"provider,attr"`
	Type     string `xml:"type,attr"`
	Params   []struct {
		Name  string `xml:"name,attr"`
		Value string `xml:"value,attr"`
	} `xml:"instance_attributes>nvpair"`
	Meta []struct {
		Name  string `xml:"name,attr"`
		Value string `xml:"value,attr"`
	} `xml:"meta_attributes>nvpair"`
}

// Agent is the resource agent as class[:provider]:type.
func (p *Primitive) Agent() string {
	if p.Provider != "" {
		return p.Class + ":" + p.Provider + ":" + p.Type
	}
	return p.Class + ":" + p.Type
}

// Param is an instance attribute.
func (p *Primitive) Param(name string) (string, bool) {
	for _, nv := range p.Params {
		if nv.Name == name {
			return nv.Value, true
		}
	}
	return "", false
}

// ReadPrimitive reads a resource from the CIB; nil when it does not exist.
func ReadPrimitive(ctx context.Context, t transport.Transport, id string) (*Primitive, error) {
	out, err := QueryCIB(ctx, t, "//primitive[@id='"+id+"']")
	if err != nil || out == nil {
		return nil, err
	}
	var p Primitive
	if err := xml.Unmarshal(out, &p); err != nil {
		return nil, fmt.Errorf("resource %s: %w", id, err)
	}
	return &p, nil
}

// Location is a location constraint of the CIB.
type Location struct {
	ID    string `xml:"id,attr"`
	Rsc   string `xml:"rsc,attr"`
	Node  string `xml:"node,attr"`
	Score string `xml:"score,attr"`
}

// Constraints are the CIB's constraints.
type Constraints struct {
	Locations []Location `xml:"rsc_location"`
	Others    []struct {
		ID string `xml:"id,attr"`
	} `xml:",any"`
}

// Has reports whether a constraint with the id exists.
func (c *Constraints) Has(id string) bool {
	for _, l := range c.Locations {
		if l.ID == id {
			return true
		}
	}
	for _, o := range c.Others {
		if o.ID == id {
			return true
		}
	}
	return false
}

// ReadConstraints reads the CIB's constraints.
func ReadConstraints(ctx context.Context, t transport.Transport) (*Constraints, error) {
	out, _, err := t.Run(ctx, "cibadmin --query --scope constraints")
	if err != nil {
		return nil, fmt.Errorf("read the constraints: %w", err)
	}
	var c Constraints
	if err := xml.Unmarshal(out, &c); err != nil {
		return nil, fmt.Errorf("%s: constraints: %w", t.Node(), err)
	}
	return &c, nil
}

// Property reads a cluster option (typ crm_config) or resource default
// (typ rsc_defaults); "" when it is not set.
func Property(ctx context.Context, t transport.Transport, typ, name string) (string, error) {
	return transport.Output(ctx, t, fmt.Sprintf("crm_attribute --type %s --name %s --query --quiet 2>/dev/null || true", q(typ), q(name)))
}

// SetProperty sets a cluster option or resource default.
func SetProperty(ctx context.Context, t transport.Transport, typ, name, value string) error {
	_, err := transport.Output(ctx, t, fmt.Sprintf("crm_attribute --type %s --name %s --update %s", q(typ), q(name), q(value)))
	return err
}

// SeedCIB writes an empty CIB with dc-deadtime set, for a pacemaker that
// has never started: with the default 20 s its first start waits 20 s
// longer, and a running cluster cannot be told before it runs.
func SeedCIB(ctx context.Context, t transport.Transport, dcDeadtime string) error {
	_, err := transport.Output(ctx, t, "set -e; cd /var/lib/pacemaker/cib; cibadmin --empty > cib.xml; "+
		"CIB_file=cib.xml crm_attribute --type crm_config --name dc-deadtime --update "+q(dcDeadtime)+"; "+
		"chown hacluster:haclient cib.xml cib.xml.sig; chmod 600 cib.xml")
	return err
}

// Ban stops a resource on node and keeps it stopped there (a location
// constraint cli-ban-<rsc>-on-<node>).
func Ban(ctx context.Context, t transport.Transport, rsc, node string) error {
	_, err := transport.Output(ctx, t, "crm_resource --ban --resource "+q(rsc)+" --node "+q(node)+" >/dev/null")
	return err
}

// Cleanup clears a resource's fail count and failed actions on node.
func Cleanup(ctx context.Context, t transport.Transport, rsc, node string) error {
	_, err := transport.Output(ctx, t, "crm_resource --cleanup --resource "+q(rsc)+" --node "+q(node)+" >/dev/null")
	return err
}

// Clear removes the constraints of bans and moves of a resource: on node,
// or everywhere when node is "".
func Clear(ctx context.Context, t transport.Transport, rsc, node string) error {
	cmd := "crm_resource --clear --resource " + q(rsc)
	if node != "" {
		cmd += " --node " + q(node)
	}
	_, err := transport.Output(ctx, t, cmd+" >/dev/null")
	return err
}

// WaitIdle waits until pacemaker has no transition in progress.
func WaitIdle(ctx context.Context, t transport.Transport, timeout time.Duration) error {
	_, err := transport.Output(ctx, t, fmt.Sprintf("crm_resource --wait --timeout=%ds", int(timeout.Seconds())))
	return err
}

// Resource is a resource as pcs creates it.
type Resource struct {
	ID    string
	Agent string // class[:provider]:type, without "stonith:"
	// Params are the instance attributes; an empty value means "not set"
	// (create leaves it out, update removes it).
	Params map[string]string
	Create string // the rest of the pcs create command: ops, meta, clone (pcs syntax, not one value)
	// CloneMeta are meta attributes of the clone (<ID>-clone) that Create
	// makes. They are set by a second command: pcs 0.11 (Debian 12) takes
	// them after "clone" without a keyword, pcs 0.12 (Debian 13) only after
	// "clone meta", and "pcs resource meta" is the same in both.
	CloneMeta map[string]string
	Stonith   bool
	// Force skips pcs's check of the parameters against the agent's
	// metadata (for fence_dummy, which ignores what it does not know).
	Force bool
}

func (r Resource) kind() string {
	if r.Stonith {
		return "stonith"
	}
	return "resource"
}

// ParamArgs are the instance attributes as pcs arguments, sorted; an
// empty value ("name=") is how pcs update removes one.
func (r Resource) ParamArgs() string { return r.paramArgs(true) }

func (r Resource) paramArgs(withEmpty bool) string {
	var keys []string
	for k, v := range r.Params {
		if v != "" || withEmpty {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var s []string
	for _, k := range keys {
		s = append(s, q(k+"="+r.Params[k]))
	}
	return strings.Join(s, " ")
}

func (r Resource) force() string {
	if r.Force {
		return " --force"
	}
	return ""
}

// CreateResource creates r.
func CreateResource(ctx context.Context, t transport.Transport, r Resource) error {
	_, err := transport.Output(ctx, t, fmt.Sprintf("pcs %s create %s %s %s %s%s", r.kind(), q(r.ID), q(r.Agent), r.paramArgs(false), r.Create, r.force()))
	if err != nil || len(r.CloneMeta) == 0 {
		return err
	}
	_, err = transport.Output(ctx, t, fmt.Sprintf("pcs resource meta %s %s", q(r.ID+"-clone"), Resource{Params: r.CloneMeta}.paramArgs(false)))
	return err
}

// UpdateResource sets r's instance attributes.
func UpdateResource(ctx context.Context, t transport.Transport, r Resource) error {
	_, err := transport.Output(ctx, t, fmt.Sprintf("pcs %s update %s %s%s", r.kind(), q(r.ID), r.ParamArgs(), r.force()))
	return err
}

// DeleteResource deletes r (and the constraints that name it).
func DeleteResource(ctx context.Context, t transport.Transport, r Resource) error {
	_, err := transport.Output(ctx, t, fmt.Sprintf("pcs %s delete %s --force", r.kind(), q(r.ID)))
	return err
}

// AddColocation keeps rsc on a node where with runs. The score is pcs's
// default, INFINITY: pcs 0.12 (Debian 13) refuses it as a bare argument,
// pcs 0.11 (Debian 12) does not know "score=".
func AddColocation(ctx context.Context, t transport.Transport, id, rsc, with string) error {
	_, err := transport.Output(ctx, t, "pcs constraint colocation add "+q(rsc)+" with "+q(with)+" id="+q(id))
	return err
}

// AddOrder starts then after first; require-all=false: one started
// instance of a clone first is enough.
func AddOrder(ctx context.Context, t transport.Transport, id, first, then string) error {
	_, err := transport.Output(ctx, t, "pcs constraint order start "+q(first)+" then start "+q(then)+" require-all=false id="+q(id))
	return err
}
