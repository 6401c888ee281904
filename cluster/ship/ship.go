// Package ship is release-and-deploy: the action behind `debship ship`.
//
// Run takes the .deb of a project's current version from its output
// directory, or builds it (debbuild), publishes it as a GitLab release
// (ci/gitlab) and deploys exactly that file with the rolling deploy
// (cluster/deploy). RollingDeployer is the same rolling deploy for the
// webhook receiver (ci/webhook), which cannot import cluster/deploy itself:
// the deploy's lab test drives a receiver.
package ship

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"gitlab.com/debship/debship/ci/gitlab"
	"gitlab.com/debship/debship/cluster/deploy"
	"gitlab.com/debship/debship/debbuild"
	"gitlab.com/debship/debship/debbuild/debfile"
)

// Options are what one ship does.
type Options struct {
	// Dir is the project, holding pyproject.toml; "" is the current
	// directory.
	Dir string
	// Output is where the .deb is looked for and built; default Dir/dist.
	Output string
	// Build are the knobs of a build (pip's index, find-links, build
	// isolation); Run sets Output and Log.
	Build debbuild.BuildOptions
	// Release publishes the .deb as `debship release` does; nil deploys
	// without publishing, and so does a dry run. Run sets Files and Log,
	// and Tag to v<project version> when it is empty.
	Release *gitlab.Config
	// Deploy is the rolling deploy of the .deb; Run sets Deb. Its
	// Inventory's [app] package is the package the project must build.
	Deploy deploy.Options
	// RunDeploy runs the deploy; nil: deploy.Run. The CLI passes one that
	// shows progress, tests a fake.
	RunDeploy func(context.Context, deploy.Options) (*deploy.Result, error)
	// Log gets Run's "ship: ..." lines and the build's and the release's
	// progress; nil: none.
	Log io.Writer
}

// Result is what was shipped.
type Result struct {
	Deb      string           // the .deb released and deployed
	Identity debfile.Identity // what it is, read from the file
	Built    bool             // Run built it (it was not in Output)
	Release  *gitlab.Result   // nil when nothing was published
	Deploy   *deploy.Result
}

// Run ships the project in o.Dir: find or build its .deb, check it is the
// package the cluster runs, release it, deploy it. Nothing is released when
// the build fails, and nothing deployed when the release fails.
func Run(ctx context.Context, o Options) (*Result, error) {
	logw := o.Log
	if logw == nil {
		logw = io.Discard
	}
	inv := o.Deploy.Inventory
	if inv == nil {
		return nil, errors.New("ship: no inventory")
	}
	dir := o.Dir
	if dir == "" {
		dir = "."
	}
	spec, err := debbuild.LoadSpec(dir, debbuild.Overrides{})
	if err != nil {
		return nil, err
	}
	if spec.Package != inv.App.Package {
		return nil, fmt.Errorf("%s builds the package %q, but the cluster in %s runs %q", spec.PyProject, spec.Package, inv.Path, inv.App.Package)
	}
	res := &Result{}
	var version string // the project's PEP 440 version
	res.Deb, version, res.Built, err = findOrBuild(ctx, spec, o, logw)
	if err != nil {
		return nil, err
	}
	if res.Identity, err = debfile.OpenDeb(res.Deb); err != nil {
		return nil, err
	}
	if res.Identity.Package != inv.App.Package {
		return nil, fmt.Errorf("%s is the package %q, but the cluster in %s runs %q", res.Deb, res.Identity.Package, inv.Path, inv.App.Package)
	}
	fmt.Fprintf(logw, "ship: %s\n", res.Deb)

	if o.Release != nil && !o.Deploy.DryRun {
		cfg := *o.Release
		if cfg.Tag == "" {
			cfg.Tag = "v" + version
		}
		cfg.Files = []string{res.Deb}
		cfg.Log = logw
		if res.Release, err = gitlab.Release(ctx, cfg); err != nil {
			return res, fmt.Errorf("release (nothing was deployed): %w", err)
		}
		fmt.Fprintf(logw, "ship: released %s\n", res.Release.ReleaseURL)
	}

	do := o.Deploy
	do.Deb = res.Deb
	run := o.RunDeploy
	if run == nil {
		run = deploy.Run
	}
	res.Deploy, err = run(ctx, do)
	return res, err
}

// findOrBuild finds the .deb of the spec's version in the output directory,
// or builds it; it returns the .deb, the project's PEP 440 version and
// whether it built. A dynamic version ([project] dynamic = ["version"]) is
// only known to the build backend, so such a project is always built: two
// builds of one commit are identical, and releasing the same file again
// changes nothing.
func findOrBuild(ctx context.Context, spec *debbuild.Spec, o Options, logw io.Writer) (deb, version string, built bool, err error) {
	out := o.Output
	if out == "" {
		out = filepath.Join(spec.Dir, "dist")
	}
	if spec.DynamicVersion {
		fmt.Fprintf(logw, "ship: the version of %s is dynamic (%s): building it\n", spec.Package, spec.PyProject)
	} else {
		ver, err := spec.TargetDebianVersion(o.Build.Target)
		if err != nil {
			return "", "", false, err
		}
		matches, _ := filepath.Glob(filepath.Join(out, debfile.FileName(spec.Package, ver, "*")))
		if len(matches) == 1 {
			return matches[0], spec.Version, false, nil
		}
		if len(matches) > 1 {
			return "", "", false, fmt.Errorf("%s has several .debs of %s %s (%s); pass the directory of one with --output", out, spec.Package, ver, strings.Join(matches, ", "))
		}
		fmt.Fprintf(logw, "ship: no .deb of %s %s in %s: building it\n", spec.Package, ver, out)
	}
	bo := o.Build
	bo.Output, bo.Log = out, logw
	res, err := debbuild.Build(ctx, spec, bo)
	if err != nil {
		return "", "", false, fmt.Errorf("build (nothing was released or deployed): %w", err)
	}
	return res.Path, res.ProjectVersion, true, nil
}
