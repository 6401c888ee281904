package gitlab

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	gl "gitlab.com/gitlab-org/api/client-go"
)

// Error is a GitLab API call that failed, as one sentence that says what
// to fix. It never includes request headers, so the token cannot leak into
// a CI log.
type Error struct {
	Status int // the HTTP status GitLab answered; 0 when it was not reached
	msg    string
}

func (e *Error) Error() string { return e.msg }

// Refused reports whether err is GitLab's definite answer to a request: a
// 4xx status other than 408 and 429, which asking again gets again. A 5xx
// (after the client's retries), a rate limit or a network failure is not
// one: it may pass.
func Refused(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status >= 400 && e.Status < 500 &&
		e.Status != http.StatusRequestTimeout && e.Status != http.StatusTooManyRequests
}

// apiStatus is the HTTP status and GitLab's error message of a failed
// call; status 0 when GitLab was not reached.
func apiStatus(resp *gl.Response, err error) (int, string) {
	status := 0
	if resp != nil && resp.Response != nil {
		status = resp.StatusCode
	}
	var er *gl.ErrorResponse
	msg := ""
	if errors.As(err, &er) {
		msg = bodyMessage(er.Body)
		if er.Response != nil {
			status = er.Response.StatusCode
		}
	}
	return status, msg
}

// apiError turns a failed call into an *Error whose sentence says what to
// fix, instead of the client's "PUT https://...: 403 {message: ...}".
func (r *releaser) apiError(what string, resp *gl.Response, err error) error {
	status, msg := apiStatus(resp, err)
	if status == 0 {
		return &Error{msg: fmt.Sprintf("%s failed: cannot reach GitLab at %s: %v", what, r.cfg.APIURL, redact(err.Error(), r.cfg.Token))}
	}
	detail := fmt.Sprintf("%d %s", status, http.StatusText(status))
	if msg != "" {
		detail += ": " + msg
	}
	return &Error{Status: status, msg: r.advice(what, status, redact(detail, r.cfg.Token))}
}

// advice is the sentence of a call GitLab answered with status.
func (r *releaser) advice(what string, status int, detail string) string {
	project := r.cfg.Project
	switch {
	case status == http.StatusUnauthorized && r.cfg.TokenHint != "":
		return fmt.Sprintf("%s failed: GitLab rejected the token (%s); %s", what, detail, r.cfg.TokenHint)
	case status == http.StatusForbidden && r.cfg.TokenHint != "":
		return fmt.Sprintf("%s failed: the token may not do this in project %s (%s); %s", what, project, detail, r.cfg.TokenHint)
	case status == http.StatusNotFound && r.cfg.ProjectHint != "":
		return fmt.Sprintf("%s failed: project %s was not found (%s); %s", what, project, detail, r.cfg.ProjectHint)
	case status == http.StatusUnauthorized:
		if r.cfg.JobToken {
			return fmt.Sprintf("%s failed: GitLab rejected the CI job token (%s); the job token expires when the job ends, so run the release from a running job, or set GITLAB_TOKEN", what, detail)
		}
		return fmt.Sprintf("%s failed: GitLab rejected the token (%s); set GITLAB_TOKEN to a valid, unexpired access token with the api scope", what, detail)
	case status == http.StatusForbidden:
		return fmt.Sprintf("%s failed: the token may not do this in project %s (%s); it needs at least the Developer role there, and a protected tag needs a user allowed to create releases for it", what, project, detail)
	case status == http.StatusNotFound:
		return fmt.Sprintf("%s failed: project %s was not found (%s); check --project or CI_PROJECT_ID (an ID or a path such as group/project) and that the token can see the project", what, project, detail)
	case status == http.StatusConflict || status == http.StatusBadRequest || status == http.StatusUnprocessableEntity:
		return fmt.Sprintf("%s failed: GitLab rejected the request (%s)", what, detail)
	case status == http.StatusTooManyRequests || status >= 500:
		return fmt.Sprintf("%s failed: GitLab kept answering %s after %d retries; try again later", what, detail, r.retries())
	}
	return fmt.Sprintf("%s failed: GitLab answered %s", what, detail)
}

func (r *releaser) retries() int {
	if r.cfg.RetryMax == 0 {
		return 4
	}
	return r.cfg.RetryMax
}

// bodyMessage reads GitLab's error body: {"message": "..."}, {"message":
// {"field": ["..."]}} or {"error": "..."}, flattened to one line.
func bodyMessage(body []byte) string {
	var v struct {
		Message any    `json:"message"`
		Error   string `json:"error"`
	}
	if json.Unmarshal(body, &v) != nil {
		s := strings.Join(strings.Fields(string(body)), " ")
		if len(s) > 200 {
			s = s[:200] + "…"
		}
		return s
	}
	parts := flatten("", v.Message)
	if v.Error != "" {
		parts = append(parts, v.Error)
	}
	return strings.Join(parts, "; ")
}

func flatten(prefix string, v any) []string {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		if prefix != "" {
			return []string{prefix + " " + x}
		}
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, flatten(prefix, e)...)
		}
		return out
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var out []string
		for _, k := range keys {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			out = append(out, flatten(p, x[k])...)
		}
		return out
	}
	return []string{fmt.Sprint(v)}
}

// redact removes the token from s, in case a server or proxy echoes it.
func redact(s, token string) string {
	if token == "" {
		return s
	}
	return strings.ReplaceAll(s, token, "[token]")
}
