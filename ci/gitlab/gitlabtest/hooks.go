package gitlabtest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Hook is a project webhook, with GitLab as the sender: it posts events to
// a receiver with the headers GitLab's documentation lists under "Delivery
// headers" (https://docs.gitlab.com/user/project/integrations/webhooks/):
// Content-Type, User-Agent "GitLab/<version>", X-Gitlab-Event,
// X-Gitlab-Token (the secret token, in clear), X-Gitlab-Event-UUID,
// X-Gitlab-Webhook-UUID, X-Gitlab-Instance and Idempotency-Key (the same
// across retries of one delivery). With a signing token it also signs each
// delivery the way gitlab-org/gitlab MR !230944 does, following the
// Standard Webhooks specification (https://www.standardwebhooks.com/):
// webhook-id (= Idempotency-Key), webhook-timestamp (Unix seconds) and
// webhook-signature "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>",
// where the key is the base64 after "whsec_" of the signing token.
type Hook struct {
	URL          string
	Token        string // secret token; no X-Gitlab-Token header when empty
	SigningToken string // "whsec_<base64>"; unsigned deliveries when empty
	UUID         string // X-Gitlab-Webhook-UUID; random when empty
	Instance     string // X-Gitlab-Instance; default https://gitlab.example.com
	Version      string // GitLab version in the User-Agent; default 18.0.0
	Client       *http.Client
}

// Delivery is one request of a hook.
type Delivery struct {
	Event          string // X-Gitlab-Event, e.g. "Pipeline Hook"
	Body           []byte
	IdempotencyKey string    // random when empty; reuse it to send a retry
	EventUUID      string    // random when empty
	Timestamp      time.Time // signing time; zero means now
}

// Send posts d once and returns the response status and (small) body.
func (h *Hook) Send(ctx context.Context, d Delivery) (int, []byte, error) {
	req, err := h.Request(ctx, d)
	if err != nil {
		return 0, nil, err
	}
	c := h.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, err
}

// Request builds the HTTP request of a delivery, for tests that change it
// before sending (a wrong header, a stale signature).
func (h *Hook) Request(ctx context.Context, d Delivery) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(d.Body))
	if err != nil {
		return nil, err
	}
	key, uuid, hook := d.IdempotencyKey, d.EventUUID, h.UUID
	if key == "" {
		key = NewUUID()
	}
	if uuid == "" {
		uuid = NewUUID()
	}
	if hook == "" {
		hook = NewUUID()
	}
	inst, ver := h.Instance, h.Version
	if inst == "" {
		inst = "https://gitlab.example.com"
	}
	if ver == "" {
		ver = "18.0.0"
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitLab/"+ver)
	req.Header.Set("X-Gitlab-Event", d.Event)
	req.Header.Set("X-Gitlab-Event-UUID", uuid)
	req.Header.Set("X-Gitlab-Webhook-UUID", hook)
	req.Header.Set("X-Gitlab-Instance", inst)
	req.Header.Set("Idempotency-Key", key)
	if h.Token != "" {
		req.Header.Set("X-Gitlab-Token", h.Token)
	}
	if h.SigningToken != "" {
		ts := d.Timestamp
		if ts.IsZero() {
			ts = time.Now()
		}
		sig, err := Sign(h.SigningToken, key, ts.Unix(), d.Body)
		if err != nil {
			return nil, err
		}
		req.Header.Set("webhook-id", key)
		req.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
		req.Header.Set("webhook-signature", sig)
	}
	return req, nil
}

// Sign returns the webhook-signature header value of a delivery.
func Sign(signingToken, id string, ts int64, body []byte) (string, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(signingToken, "whsec_"))
	if err != nil {
		return "", fmt.Errorf("signing token is not whsec_<base64>: %w", err)
	}
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%d.", id, ts)
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil)), nil
}

// NewSigningToken makes a signing token like GitLab's: whsec_ and the
// base64 of 32 random bytes.
func NewSigningToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// NewUUID returns a random (version 4) UUID.
func NewUUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
