package deploy

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"strings"
	"time"

	"gitlab.com/debship/debship/cluster/host"
	"gitlab.com/debship/debship/cluster/transport"
)

// The deploy lock lives in the cluster itself, in the CIB (pacemaker's
// replicated configuration): every node sees the same lock, it survives the
// deploying machine, and creating an element with an id that exists fails,
// so two deploys that start at the same moment cannot both get it. It is a
// property set of its own in crm_config; pacemaker ignores properties it
// does not know.
const lockID = "debship-deploy-lock"

// Lock is who holds the deploy lock.
type Lock struct {
	ID      string    `json:"id"`      // the deploy's ID
	Holder  string    `json:"holder"`  // who started it (user, "webhook job 12", CI job)
	Host    string    `json:"host"`    // the machine it runs on
	PID     int       `json:"pid"`     // the process there
	Kind    string    `json:"kind"`    // deploy or rollback
	Version string    `json:"version"` // the version being deployed
	Since   time.Time `json:"since"`
}

func (l *Lock) String() string {
	return fmt.Sprintf("%s on %s (pid %d) since %s, %s of version %s (deploy %s)",
		l.Holder, l.Host, l.PID, l.Since.Local().Format("2006-01-02 15:04:05 MST"), l.Kind, l.Version, l.ID)
}

// LockHeldError is a deploy refused because another one holds the lock.
type LockHeldError struct{ Lock *Lock }

func (e *LockHeldError) Error() string {
	return fmt.Sprintf("another deploy holds the deploy lock: %s; if that deploy is dead (its machine crashed or it was killed), run again with --force-unlock to take the lock over", e.Lock)
}

type nvpair struct {
	ID    string `xml:"id,attr"`
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type propertySet struct {
	XMLName xml.Name `xml:"cluster_property_set"`
	ID      string   `xml:"id,attr"`
	Pairs   []nvpair `xml:"nvpair"`
}

func (l *Lock) xml() string {
	set := propertySet{ID: lockID}
	add := func(k, v string) {
		set.Pairs = append(set.Pairs, nvpair{ID: lockID + "-" + k, Name: lockID + "-" + k, Value: v})
	}
	add("id", l.ID)
	add("holder", l.Holder)
	add("host", l.Host)
	add("pid", fmt.Sprint(l.PID))
	add("kind", l.Kind)
	add("version", l.Version)
	add("since", l.Since.UTC().Format(time.RFC3339))
	b, _ := xml.Marshal(set)
	return string(b)
}

func parseLock(b []byte) (*Lock, error) {
	var set propertySet
	if err := xml.Unmarshal(bytes.TrimSpace(b), &set); err != nil {
		return nil, fmt.Errorf("read the deploy lock: %w", err)
	}
	l := &Lock{}
	for _, p := range set.Pairs {
		switch strings.TrimPrefix(p.Name, lockID+"-") {
		case "id":
			l.ID = p.Value
		case "holder":
			l.Holder = p.Value
		case "host":
			l.Host = p.Value
		case "pid":
			fmt.Sscan(p.Value, &l.PID)
		case "kind":
			l.Kind = p.Value
		case "version":
			l.Version = p.Value
		case "since":
			l.Since, _ = time.Parse(time.RFC3339, p.Value)
		}
	}
	return l, nil
}

// ReadLock returns the deploy lock, nil when nobody holds it. t is any
// node of the cluster.
func ReadLock(ctx context.Context, t transport.Transport) (*Lock, error) {
	out, err := host.QueryCIB(ctx, t, "//cluster_property_set[@id='"+lockID+"']")
	if err != nil {
		return nil, fmt.Errorf("read the deploy lock: %w", err)
	}
	if out == nil {
		return nil, nil
	}
	return parseLock(out)
}

// acquireLock creates the lock; if it exists, it returns a *LockHeldError
// naming the holder.
func acquireLock(ctx context.Context, t transport.Transport, l *Lock) error {
	err := host.CreateInCIB(ctx, t, "crm_config", l.xml())
	if err == nil {
		return nil
	}
	held, rerr := ReadLock(ctx, t)
	if rerr == nil && held != nil {
		return &LockHeldError{Lock: held}
	}
	return fmt.Errorf("take the deploy lock: %w", err)
}

// releaseLock deletes the lock if it is still the one with id. A
// --force-unlock by someone else may have taken it over meanwhile, and a
// new deploy taken it since: that lock is not this run's to delete, so the
// check and the delete are one CIB operation (lockXPath), never a read
// followed by a delete.
func releaseLock(ctx context.Context, t transport.Transport, id string) error {
	if err := deleteLock(ctx, t, id); err != nil {
		return err
	}
	// Only to say so: the delete above left another deploy's lock alone.
	held, err := ReadLock(ctx, t)
	if err != nil || held == nil || held.ID == id {
		return err
	}
	return fmt.Errorf("left the deploy lock alone: it is held by %s now", held)
}

// deleteLock deletes the lock of the deploy id, and no other. Pacemaker's
// `cibadmin --delete --xml-text` matches an element by its name and its
// own attributes and ignores the children given (cibadmin --help; in
// lib/common, delete_xml_child, now pcmk__xe_delete_match): the deploy's
// id, an nvpair, cannot take part there. `--delete --xpath` deletes the first element the XPath matches,
// evaluated by the CIB manager inside the one request, and succeeds when
// nothing matches (lib/cib/cib_ops.c in 2.1.5 as today; tried with 2.1.5's
// cibadmin on a CIB_file).
func deleteLock(ctx context.Context, t transport.Transport, id string) error {
	if _, _, err := t.Run(ctx, "cibadmin --delete --xpath "+transport.Quote(lockXPath(id))); err != nil {
		return fmt.Errorf("release the deploy lock: %w", err)
	}
	return nil
}

// lockXPath selects the lock set whose id nvpair is id; for id "", a lock
// without one (written by hand or cut short).
func lockXPath(id string) string {
	pair := "nvpair[@name='" + lockID + "-id']"
	if id == "" {
		return "//cluster_property_set[@id='" + lockID + "'][not(" + pair + ")]"
	}
	return "//cluster_property_set[@id='" + lockID + "'][" + pair + "[@value=" + xpathString(id) + "]]"
}

// xpathString is s as an XPath 1.0 string literal, which has no escapes:
// a value with both kinds of quote is spliced with concat().
func xpathString(s string) string {
	if !strings.Contains(s, "'") {
		return "'" + s + "'"
	}
	if !strings.Contains(s, `"`) {
		return `"` + s + `"`
	}
	return "concat('" + strings.ReplaceAll(s, "'", `', "'", '`) + "')"
}

// Unlock removes the deploy lock whoever holds it, and returns the lock it
// removed (nil: there was none). For `--force-unlock` after a deploy that
// died; a live deploy whose lock is removed goes on, so check first. Only
// the lock read is deleted: one that a new deploy took meanwhile stays,
// and the caller's acquireLock then names that deploy.
func Unlock(ctx context.Context, t transport.Transport) (*Lock, error) {
	held, err := ReadLock(ctx, t)
	if err != nil || held == nil {
		return nil, err
	}
	if err := deleteLock(ctx, t, held.ID); err != nil {
		return held, err
	}
	return held, nil
}
