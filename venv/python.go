package venv

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

//go:embed buildreqs.py
var buildReqsScript string

//go:embed probe.py
var probeScript string

// interpreter is what the probe learned about the Python we build with.
type interpreter struct {
	Version        string `json:"version"`      // "3.11"
	FullVersion    string `json:"full_version"` // "3.11.2"
	Executable     string `json:"executable"`
	BaseExecutable string `json:"base_executable"`
	InVenv         bool   `json:"in_venv"`
	Venv           bool   `json:"venv"`
	Ensurepip      bool   `json:"ensurepip"`
	Pip            string `json:"pip"` // "" when pip is not importable
}

// minPip is the first pip with --python (22.3): the install step runs the
// system pip against the new venv's interpreter, so the venv needs no pip.
var minPip = [2]int{22, 3}

// probePython runs probe.py with the interpreter and checks that it can do
// what the build needs.
func probePython(ctx context.Context, sb sandbox, python string, env []string, keepPip bool) (*interpreter, error) {
	if !filepath.IsAbs(python) {
		return nil, fmt.Errorf("python interpreter must be an absolute path such as /usr/bin/python3, not %q: a name looked up on PATH may be a pyenv or conda python that the target host does not have", python)
	}
	st, err := os.Stat(sb.host(python))
	if err != nil {
		if sb.root != "" {
			return nil, fmt.Errorf("python interpreter %s not found in the build root %s: remove the root to have it rebuilt", python, sb.root)
		}
		return nil, fmt.Errorf("python interpreter %s not found: install it with \"apt-get install python3\"", python)
	}
	if st.IsDir() || st.Mode().Perm()&0o111 == 0 {
		return nil, fmt.Errorf("python interpreter %s is not an executable file", python)
	}
	cmd := sb.command(ctx, python, "-c", probeScript)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("probe %s: %w: %s", python, err, strings.TrimSpace(stderr.String()))
	}
	var in interpreter
	if err := json.Unmarshal(out, &in); err != nil {
		return nil, fmt.Errorf("probe %s: unexpected output %q: %w", python, out, err)
	}
	if err := in.check(python, keepPip); err != nil {
		return nil, err
	}
	return &in, nil
}

// check turns a probe result into the one sentence a user needs to fix
// their build host.
func (in *interpreter) check(python string, keepPip bool) error {
	if _, _, err := splitMinor(in.Version); err != nil {
		return fmt.Errorf("probe %s: %w", python, err)
	}
	// venv writes home = the directory of the interpreter that really runs;
	// a wrapper (a pyenv shim) would leave a home the target host lacks.
	if in.BaseExecutable != "" && filepath.Dir(in.BaseExecutable) != filepath.Dir(python) {
		return fmt.Errorf("%s runs %s (a shim or wrapper?): give the real interpreter, such as /usr/bin/python3", python, in.BaseExecutable)
	}
	if in.InVenv {
		return fmt.Errorf("python interpreter %s belongs to a virtualenv; use the system interpreter such as /usr/bin/python3", python)
	}
	venvPkg := "python3-venv"
	if base := filepath.Base(python); base != "python3" {
		venvPkg = "python" + in.Version + "-venv"
	}
	if !in.Venv {
		return fmt.Errorf("%s has no venv module: install it with \"apt-get install %s\"", python, venvPkg)
	}
	// Without KeepPip the venv is made with --without-pip and never runs
	// ensurepip, so python3-venv is only required when pip is shipped.
	if keepPip && !in.Ensurepip {
		return fmt.Errorf("%s cannot put pip into a virtualenv because ensurepip is missing: install it with \"apt-get install %s\"", python, venvPkg)
	}
	if in.Pip == "" {
		return fmt.Errorf("%s has no pip, which builds the project's wheel and installs it: install it with \"apt-get install python3-pip\"", python)
	}
	if !pipAtLeast(in.Pip, minPip) {
		return fmt.Errorf("pip %s of %s is too old (debship needs pip >= %d.%d for --python): install python3-pip from Debian 12 or later", in.Pip, python, minPip[0], minPip[1])
	}
	return nil
}

func splitMinor(v string) (major, minor int, err error) {
	a, b, ok := strings.Cut(v, ".")
	if ok {
		major, err = strconv.Atoi(a)
		if err == nil {
			minor, err = strconv.Atoi(b)
		}
	}
	if !ok || err != nil {
		return 0, 0, fmt.Errorf("unexpected Python version %q", v)
	}
	return major, minor, nil
}

func pipAtLeast(v string, min [2]int) bool {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	maj, err1 := strconv.Atoi(parts[0])
	digits := parts[1]
	if i := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		digits = digits[:i] // "0b1", "3rc1"
	}
	mnr, err2 := strconv.Atoi(digits)
	if err1 != nil || err2 != nil {
		return false
	}
	return maj > min[0] || maj == min[0] && mnr >= min[1]
}

// pythonDepends pins the interpreter's minor version: the venv's bin/python
// is a symlink to the system interpreter and its site-packages path carries
// the minor version, so a dist-upgrade to the next minor breaks the venv.
func pythonDepends(version string) ([]string, error) {
	major, minor, err := splitMinor(version)
	if err != nil {
		return nil, err
	}
	return []string{
		fmt.Sprintf("python3 (>= %d.%d)", major, minor),
		fmt.Sprintf("python3 (<< %d.%d)", major, minor+1),
	}, nil
}

// droppedEnv are variables that would make the interpreter or pip look at
// something other than Debian's interpreter and the venv being built.
var droppedEnv = map[string]bool{
	"PYTHONHOME":          true,
	"PYTHONPATH":          true,
	"PYTHONSTARTUP":       true,
	"PYTHONUSERBASE":      true,
	"PYTHONPLATLIBDIR":    true,
	"PYTHONEXECUTABLE":    true,
	"VIRTUAL_ENV":         true,
	"CONDA_PREFIX":        true,
	"__PYVENV_LAUNCHER__": true,
	// PIP_* passes through (mirrors, certificates, timeouts), except those that
	// redirect the install target or refuse to run outside a venv.
	"PIP_USER":               true,
	"PIP_TARGET":             true,
	"PIP_PREFIX":             true,
	"PIP_ROOT":               true,
	"PIP_PYTHON":             true,
	"PIP_REQUIRE_VIRTUALENV": true,
	"PIP_REQUIRE_VENV":       true,
	"PIP_EDITABLE":           true,
}

// childEnv is the environment for every python and pip child.
func childEnv(base []string, sourceDateEpoch int64) []string {
	env := make([]string, 0, len(base)+5)
	set := map[string]bool{}
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		// pip sets _PIP_RUNNING_IN_SUBPROCESS for its own --python re-exec; an
		// inherited one makes pip ignore --python and aim at the system.
		if droppedEnv[k] || strings.HasPrefix(k, "_PIP_") || k == "PYTHONNOUSERSITE" || k == "PYTHONDONTWRITEBYTECODE" {
			continue
		}
		if k == "SOURCE_DATE_EPOCH" && sourceDateEpoch > 0 {
			continue
		}
		set[k] = true
		env = append(env, kv)
	}
	env = append(env,
		"PYTHONNOUSERSITE=1",
		// The venv ships no bytecode (see removeBytecode); this also keeps pip
		// from writing __pycache__ into the system's dist-packages as root.
		"PYTHONDONTWRITEBYTECODE=1",
	)
	if sourceDateEpoch > 0 {
		env = append(env, "SOURCE_DATE_EPOCH="+strconv.FormatInt(sourceDateEpoch, 10))
	}
	// A prompt for index credentials would hang a CI job forever, and the
	// version check is a network call that fails offline.
	for _, kv := range []string{"PIP_NO_INPUT=1", "PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_PROGRESS_BAR=off"} {
		if k, _, _ := strings.Cut(kv, "="); !set[k] {
			env = append(env, kv)
		}
	}
	return env
}

// tailLines keeps the last n lines written to it.
type tailLines struct {
	n     int
	lines []string
	part  []byte
}

func (t *tailLines) Write(p []byte) (int, error) {
	t.part = append(t.part, p...)
	for {
		i := bytes.IndexByte(t.part, '\n')
		if i < 0 {
			break
		}
		t.push(string(t.part[:i]))
		t.part = t.part[i+1:]
	}
	return len(p), nil
}

func (t *tailLines) push(s string) {
	s = strings.TrimRight(s, "\r")
	if strings.TrimSpace(s) == "" {
		return
	}
	t.lines = append(t.lines, s)
	if len(t.lines) > t.n {
		t.lines = t.lines[len(t.lines)-t.n:]
	}
}

func (t *tailLines) String() string {
	if len(t.part) > 0 {
		t.push(string(t.part))
		t.part = nil
	}
	return strings.Join(t.lines, "\n")
}

// runTool runs a python/pip child with the scrubbed environment. Its output
// goes to log only when verbose; on failure the error carries its last lines.
func runTool(ctx context.Context, sb sandbox, dir string, env []string, log io.Writer, verbose bool, name string, args ...string) error {
	cmd := sb.command(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdin = nil
	tail := &tailLines{n: 15}
	var out io.Writer = tail
	if verbose {
		out = io.MultiWriter(tail, log)
	}
	cmd.Stdout, cmd.Stderr = out, out
	// The child stays in our process group so that Ctrl-C on a terminal
	// reaches pip's build backends too; on cancel the child is killed and,
	// should a grandchild keep the output pipe open, Wait gives up after
	// WaitDelay instead of hanging.
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		err = fmt.Errorf("exited with status %d", ee.ExitCode())
	}
	if last := tail.String(); last != "" {
		return fmt.Errorf("%w; last lines of its output:\n%s", err, last)
	}
	return err
}

// hostSatisfiesBuildRequires runs buildreqs.py in the project directory:
// true when the interpreter's installed packages meet [build-system]
// requires, else false and the first requirement that is not met.
func hostSatisfiesBuildRequires(ctx context.Context, o Options, env []string) (bool, string) {
	sb := o.sandbox()
	cmd := sb.command(ctx, o.Python, "-I", "-c", buildReqsScript)
	cmd.Dir, cmd.Env = sb.in(o.ProjectDir), env
	out, err := cmd.Output()
	if err != nil {
		why := strings.TrimSpace(string(out))
		if why == "" {
			why = err.Error()
		}
		return false, why
	}
	return true, ""
}
