// Package testbed starts the test bed's Kubernetes API server (with etcd,
// through controller-runtime's envtest) for the end-to-end tests of one
// package, and hands out what real clients need to reach it: a *rest.Config, a
// clientset, a kubeconfig file with an admin user for kubectl and helm, and
// the helm binary that scripts/testbed.sh built.
//
// One API server per test package, started in TestMain:
//
//	func TestMain(m *testing.M) {
//		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
//		env, err := testbed.Start(ctx)
//		cancel()
//		if err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			os.Exit(2)
//		}
//		code := m.Run()
//		if err := env.Stop(); err != nil {
//			fmt.Fprintln(os.Stderr, err)
//		}
//		os.Exit(code)
//	}
//
// The binaries come from KUBEBUILDER_ASSETS when it is set (make exports it),
// else Start runs scripts/testbed.sh, which builds them once into a cache
// outside the clone (about 6 minutes cold on 2 cores, nothing when warm).
//
// The API server runs no controllers and no kubelet; admission is the
// upstream default set (PodSecurity included) with RBAC authorization, and
// ServiceAccount tokens can be issued with TokenRequest. The ServiceAccount
// admission plugin stays off, as in envtest, because no controller creates a
// namespace's "default" ServiceAccount; WithServiceAccountAdmission turns it
// on for tests that create the ServiceAccounts their Pods use.
//
// This is test code only; nothing under pkg/ imports it.
package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// AdminUser is the user name in the kubeconfig that Start writes; it belongs
// to system:masters.
const AdminUser = "admin"

// admissionPlugins are enabled explicitly (they are upstream's defaults) so
// that a change of defaults in a later API server does not silently weaken
// what the tests check: PodSecurity enforces a namespace's
// pod-security.kubernetes.io labels, NamespaceLifecycle refuses objects in
// missing or terminating namespaces.
var admissionPlugins = []string{
	"NamespaceLifecycle",
	"LimitRanger",
	"PodSecurity",
	"Priority",
	"DefaultTolerationSeconds",
	"ResourceQuota",
	"MutatingAdmissionWebhook",
	"ValidatingAdmissionWebhook",
	"ValidatingAdmissionPolicy",
}

// Env is a running test bed. Its fields are read-only; Stop ends it.
type Env struct {
	// Config reaches the API server as AdminUser.
	Config *rest.Config
	// Clientset is a typed client built from Config.
	Clientset *kubernetes.Clientset
	// Kubeconfig is the path of a kubeconfig file (current context set,
	// AdminUser) for kubectl, helm and other processes.
	Kubeconfig string
	// HelmBin is the path of the helm binary (Helm 3) built by
	// scripts/testbed.sh.
	HelmBin string
	// Helm4Bin is the path of Helm 4's binary, built by scripts/testbed.sh
	// beside it.
	Helm4Bin string
	// AssetsDir is the directory holding kube-apiserver, etcd and helm.
	AssetsDir string
	// Dir is a private directory for this Env (kubeconfig, helm's homes),
	// removed by Stop.
	Dir string

	env *envtest.Environment
}

// Option changes how Start configures the test bed.
type Option func(*options)

type options struct {
	startTimeout time.Duration
	apiServerArg map[string][]string
}

// WithStartTimeout bounds how long etcd and the API server may each take to
// become healthy (default 60s: the first start on 2 busy cores is slow).
func WithStartTimeout(d time.Duration) Option {
	return func(o *options) { o.startTimeout = d }
}

// WithAPIServerArg sets a kube-apiserver flag (name without dashes),
// replacing any default for it.
func WithAPIServerArg(name string, values ...string) Option {
	return func(o *options) { o.apiServerArg[name] = values }
}

// WithServiceAccountAdmission enables the ServiceAccount admission plugin, as
// in a real cluster: a Pod's ServiceAccount must exist and its token volume is
// added to the Pod. Nothing creates namespaces' "default" ServiceAccounts.
func WithServiceAccountAdmission() Option {
	return func(o *options) {
		o.apiServerArg["enable-admission-plugins"] = append(append([]string(nil), admissionPlugins...), "ServiceAccount")
		o.apiServerArg["disable-admission-plugins"] = nil
	}
}

// Start finds the binaries, starts etcd and the API server, provisions
// AdminUser and writes its kubeconfig. ctx bounds finding (and perhaps
// building) the binaries; the servers run until Stop.
func Start(ctx context.Context, opts ...Option) (*Env, error) {
	o := options{
		startTimeout: 60 * time.Second,
		apiServerArg: map[string][]string{
			"enable-admission-plugins": admissionPlugins,
		},
	}
	for _, opt := range opts {
		opt(&o)
	}

	assets, err := AssetsDir(ctx)
	if err != nil {
		return nil, err
	}
	for _, name := range []string{"kube-apiserver", "etcd", "helm"} {
		if _, err := os.Stat(filepath.Join(assets, name)); err != nil {
			return nil, fmt.Errorf("start test bed: missing binary: %w", err)
		}
	}

	dir, err := os.MkdirTemp("", "iter8-testbed-")
	if err != nil {
		return nil, fmt.Errorf("start test bed: %w", err)
	}

	te := &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		ControlPlaneStartTimeout: o.startTimeout,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	api := te.ControlPlane.GetAPIServer()
	api.Path = filepath.Join(assets, "kube-apiserver")
	args := api.Configure()
	for name, values := range o.apiServerArg {
		if values == nil {
			args.Disable(name)
			continue
		}
		args.Set(name, strings.Join(values, ","))
	}
	te.ControlPlane.Etcd = &envtest.Etcd{Path: filepath.Join(assets, "etcd")}

	if _, err := te.Start(); err != nil {
		_ = te.Stop()
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("start test bed: unable to start control plane itself: %w", err)
	}
	e := &Env{
		HelmBin:   filepath.Join(assets, "helm"),
		Helm4Bin:  filepath.Join(assets, "helm4"),
		AssetsDir: assets,
		Dir:       dir,
		env:       te,
	}
	if err := e.provisionAdmin(); err != nil {
		_ = e.Stop()
		return nil, fmt.Errorf("start test bed: %w", err)
	}
	return e, nil
}

func (e *Env) provisionAdmin() error {
	user, err := e.env.AddUser(envtest.User{Name: AdminUser, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("provision user %s: %w", AdminUser, err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig for user %s: %w", AdminUser, err)
	}
	e.Kubeconfig = filepath.Join(e.Dir, "kubeconfig")
	if err := os.WriteFile(e.Kubeconfig, kc, 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	e.Config = rest.CopyConfig(user.Config())
	// The default client-side limits (5 QPS) make setup slow and flaky.
	e.Config.QPS, e.Config.Burst = 100, 200
	e.Clientset, err = kubernetes.NewForConfig(e.Config)
	if err != nil {
		return fmt.Errorf("clientset: %w", err)
	}
	return nil
}

// Stop ends the API server and etcd and removes Dir. It is safe to call
// more than once.
func (e *Env) Stop() error {
	var errs []error
	if e.env != nil {
		if err := e.env.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stop test bed: %w", err))
		}
		e.env = nil
	}
	if e.Dir != "" {
		if err := os.RemoveAll(e.Dir); err != nil {
			errs = append(errs, fmt.Errorf("stop test bed: %w", err))
		}
	}
	return errors.Join(errs...)
}

// HelmEnv returns the environment for a helm process: the caller's, with
// KUBECONFIG set to Kubeconfig and helm's config, cache and data homes in
// Dir, so that repositories and plugins never touch the user's own.
func (e *Env) HelmEnv() []string {
	return append(os.Environ(),
		"KUBECONFIG="+e.Kubeconfig,
		"HELM_CONFIG_HOME="+filepath.Join(e.Dir, "helm", "config"),
		"HELM_CACHE_HOME="+filepath.Join(e.Dir, "helm", "cache"),
		"HELM_DATA_HOME="+filepath.Join(e.Dir, "helm", "data"),
	)
}

// Helm returns a command that runs the built helm with args, HelmEnv and
// --kubeconfig set to Kubeconfig.
func (e *Env) Helm(ctx context.Context, args ...string) *exec.Cmd {
	return e.HelmAt(ctx, e.HelmBin, args...)
}

// HelmAt is Helm with the helm binary bin (HelmBin or Helm4Bin).
func (e *Env) HelmAt(ctx context.Context, bin string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", e.Kubeconfig}, args...)...)
	cmd.Env = e.HelmEnv()
	return cmd
}

// AssetsDir returns the directory holding the test bed's binaries:
// KUBEBUILDER_ASSETS when set, else the directory that scripts/testbed.sh
// prints (building the binaries if they are not yet in its cache).
func AssetsDir(ctx context.Context) (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	script := filepath.Join(root, "scripts", "testbed.sh")
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Dir = root
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr // progress of a cold build
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("run %s: %w", script, err)
	}
	dir := strings.TrimSpace(out.String())
	if dir == "" {
		return "", fmt.Errorf("run %s: printed no directory", script)
	}
	return dir, nil
}

// RepoRoot returns the root of the iter8 checkout: found from this source
// file's path, or (when built with -trimpath) by walking up from the working
// directory, which go test sets to the package's directory.
func RepoRoot() (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		root := filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
		if isRepoRoot(root) {
			return root, nil
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		if isRepoRoot(dir) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find repository root: no scripts/testbed.sh above the working directory")
		}
		dir = parent
	}
}

func isRepoRoot(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "scripts", "testbed.sh"))
	return err == nil
}

// Main is the TestMain of a package that needs an API server: it starts
// one (a cold build of the binaries may take minutes), hands it to use, runs
// the tests and stops it. It returns the exit code for os.Exit.
func Main(m *testing.M, use func(*Env), opts ...Option) int {
	return MainWith(m, func(e *Env) (func(), error) { use(e); return func() {}, nil }, opts...)
}

// MainWith is Main for packages that set up more on the API server (a node
// harness, built binaries): setup runs after the API server started, its
// teardown after the tests and before the API server stops.
func MainWith(m *testing.M, setup func(*Env) (teardown func(), err error), opts ...Option) int {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	e, err := Start(ctx, opts...)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	code := 2
	if teardown, err := setup(e); err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else {
		code = m.Run()
		teardown()
	}
	if err := e.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
