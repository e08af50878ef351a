package traefik

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/iter8-tools/iter8/test/testbed"
)

// ControllerName is the controllerName of Traefik's GatewayClasses.
const ControllerName = "traefik.io/gateway-controller"

// instanceLabel labels the GatewayClass of one Traefik; that Traefik selects
// GatewayClasses by it, so that two instances never program each other's.
const instanceLabel = "iter8.tools/traefik"

var (
	gatewayClasses = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gatewayclasses"}
	gateways       = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gateways"}
)

// Config says where Traefik runs and what it serves.
type Config struct {
	// Admin reaches the API server with the rights to create the
	// ServiceAccount, RBAC, GatewayClass and Gateway (the test bed's admin).
	// Its Host is Traefik's endpoint and its CA Traefik's.
	Admin *rest.Config
	// Namespace holds the ServiceAccount and the Gateway; it must exist.
	Namespace string
	// Gateway is the Gateway's name (default "gateway"). Its listener
	// "web" accepts HTTPRoutes from all namespaces.
	Gateway string
	// Binary is the traefik executable; "" means [Binary].
	Binary string
	// Throttle is the provider's refresh throttle (default 200ms): Traefik
	// applies a change of the watched objects at most this often.
	Throttle time.Duration
	// StartTimeout bounds how long Traefik may take to answer its ping and
	// program the Gateway (default 60s).
	StartTimeout time.Duration
	// LogLevel is Traefik's log level (default INFO).
	LogLevel string
	// CRDProvider also runs Traefik's Kubernetes CRD provider, so that
	// HTTPRoutes can reach TraefikServices (the release chart's mirroring
	// on dataPlane traefik), with allowEmptyServices, as the chart asks.
	// The traefik.io CRDs ([CRDFile]) must be installed. It watches every
	// namespace, so that one Traefik serves the TraefikServices of all the
	// apps its Gateway routes to.
	CRDProvider bool
	// Logf, when set, receives a line for every step.
	Logf func(format string, args ...any)
}

// Traefik is a running Traefik. Its fields are read-only.
type Traefik struct {
	// Addr is the host:port (on 127.0.0.1) of the entrypoint "web", which the
	// Gateway's listener is.
	Addr string
	// URL is "http://" + Addr.
	URL string
	// Namespace and Gateway name the Gateway, for HTTPRoutes' parentRefs.
	Namespace, Gateway string
	// GatewayClass is the name of the Gateway's class.
	GatewayClass string
	// PingURL is Traefik's ping endpoint, on its own entrypoint.
	PingURL string

	cfg      Config
	id       string
	dir      string
	client   kubernetes.Interface
	dyn      dynamic.Interface
	cmd      *exec.Cmd
	exited   chan struct{}
	logs     *tailBuffer
	stopOnce sync.Once
	stopErr  error
}

// Binary returns the path of the traefik binary that scripts/testbed.sh
// builds: "traefik" in the test bed's assets directory (KUBEBUILDER_ASSETS,
// or the script's), running the script when it is not there yet.
func Binary(ctx context.Context) (string, error) {
	dir, err := testbed.AssetsDir(ctx)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "traefik")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	// KUBEBUILDER_ASSETS may name a directory from before Traefik was part
	// of the test bed: ask the script, which builds and links it.
	root, err := testbed.RepoRoot()
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "scripts", "testbed.sh"))
	cmd.Dir = root
	cmd.Env = withoutEnv(os.Environ(), "KUBEBUILDER_ASSETS")
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build traefik: run scripts/testbed.sh: %w", err)
	}
	bin = filepath.Join(strings.TrimSpace(out.String()), "traefik")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("build traefik: %w", err)
	}
	return bin, nil
}

// CRDFile returns the path of the YAML of Traefik's traefik.io CRDs, from
// the Traefik module that test/traefik/tools pins (fetched through the Go
// module proxy when it is not in the module cache).
func CRDFile(ctx context.Context) (string, error) {
	root, err := testbed.RepoRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", "github.com/traefik/traefik/v3")
	cmd.Dir = filepath.Join(root, "test", "traefik", "tools")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("find Traefik's CRDs: go mod download: %v\n%s", err, stderr.String())
	}
	var m struct{ Dir, Error string }
	if err := json.Unmarshal(out, &m); err != nil || m.Error != "" || m.Dir == "" {
		return "", fmt.Errorf("find Traefik's CRDs: go mod download: %v %s", err, m.Error)
	}
	f := filepath.Join(m.Dir, "docs", "content", "reference", "dynamic-configuration", "kubernetes-crd-definition-v1.yml")
	if _, err := os.Stat(f); err != nil {
		return "", fmt.Errorf("find Traefik's CRDs: %w", err)
	}
	return f, nil
}

// Start creates Traefik's ServiceAccount, RBAC, GatewayClass and Gateway,
// starts Traefik and waits until it answers its ping and the Gateway is
// Programmed. ctx bounds the start (finding the binary included); Traefik
// then runs until Stop. On error everything made so far is removed.
func Start(ctx context.Context, cfg Config) (*Traefik, error) {
	if cfg.Admin == nil || cfg.Namespace == "" {
		return nil, errors.New("start traefik: Config.Admin and Config.Namespace are required")
	}
	if cfg.Gateway == "" {
		cfg.Gateway = "gateway"
	}
	if cfg.Throttle == 0 {
		cfg.Throttle = 200 * time.Millisecond
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 60 * time.Second
	}
	if cfg.LogLevel == "" {
		cfg.LogLevel = "INFO"
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.Binary == "" {
		bin, err := Binary(ctx)
		if err != nil {
			return nil, fmt.Errorf("start traefik: %w", err)
		}
		cfg.Binary = bin
	}
	client, err := kubernetes.NewForConfig(cfg.Admin)
	if err != nil {
		return nil, fmt.Errorf("start traefik: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg.Admin)
	if err != nil {
		return nil, fmt.Errorf("start traefik: %w", err)
	}
	id := randomID()
	t := &Traefik{
		Namespace:    cfg.Namespace,
		Gateway:      cfg.Gateway,
		GatewayClass: "iter8-traefik-" + id,
		cfg:          cfg,
		id:           id,
		client:       client,
		dyn:          dyn,
		logs:         newTailBuffer(256 << 10),
	}
	if err := t.start(ctx); err != nil {
		if stopErr := t.Stop(); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
		return nil, fmt.Errorf("start traefik: %w", err)
	}
	return t, nil
}

func (t *Traefik) name() string { return "iter8-traefik-" + t.id }

func (t *Traefik) start(ctx context.Context) error {
	var err error
	if t.dir, err = os.MkdirTemp("", "iter8-traefik-"); err != nil {
		return err
	}
	token, err := t.createAccess(ctx)
	if err != nil {
		return err
	}
	tokenFile := filepath.Join(t.dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		return err
	}
	caFile, err := t.writeCA()
	if err != nil {
		return err
	}
	webPort, err := freePort()
	if err != nil {
		return err
	}
	pingPort, err := freePort()
	if err != nil {
		return err
	}
	t.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(webPort))
	t.URL = "http://" + t.Addr
	t.PingURL = fmt.Sprintf("http://127.0.0.1:%d/ping", pingPort)
	if err := t.createGateway(ctx, webPort); err != nil {
		return err
	}

	args := []string{
		"--global.checkNewVersion=false",
		"--global.sendAnonymousUsage=false",
		"--log.level=" + t.cfg.LogLevel,
		"--log.noColor=true",
		"--entryPoints.web.address=" + t.Addr,
		fmt.Sprintf("--entryPoints.traefik.address=127.0.0.1:%d", pingPort),
		"--ping=true",
		"--ping.entryPoint=traefik",
		"--providers.providersThrottleDuration=" + t.cfg.Throttle.String(),
		"--providers.kubernetesgateway=true",
		"--providers.kubernetesgateway.endpoint=" + t.cfg.Admin.Host,
		"--providers.kubernetesgateway.token=" + tokenFile,
		"--providers.kubernetesgateway.certauthfilepath=" + caFile,
		"--providers.kubernetesgateway.labelselector=" + instanceLabel + "=" + t.id,
		"--providers.kubernetesgateway.throttleDuration=" + t.cfg.Throttle.String(),
	}
	if t.cfg.CRDProvider {
		args = append(args,
			"--providers.kubernetescrd=true",
			"--providers.kubernetescrd.endpoint="+t.cfg.Admin.Host,
			"--providers.kubernetescrd.token="+tokenFile,
			"--providers.kubernetescrd.certauthfilepath="+caFile,
			"--providers.kubernetescrd.throttleDuration="+t.cfg.Throttle.String(),
			// Without it a TraefikService whose mirror has no ready
			// endpoint is dropped whole, and the routes through it with it.
			"--providers.kubernetescrd.allowEmptyServices=true",
		)
	}
	t.cmd = exec.Command(t.cfg.Binary, args...)
	t.cmd.Dir = t.dir
	// Nothing of the test's environment: no proxy, no in-cluster variables.
	t.cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.dir}
	t.cmd.Stdout, t.cmd.Stderr = t.logs, t.logs
	t.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	t.cfg.Logf("traefik: starting %s on %s (Gateway %s/%s)", t.cfg.Binary, t.Addr, t.Namespace, t.Gateway)
	if err := t.cmd.Start(); err != nil {
		return err
	}
	t.exited = make(chan struct{})
	go func() {
		_ = t.cmd.Wait()
		close(t.exited)
	}()

	ctx, cancel := context.WithTimeout(ctx, t.cfg.StartTimeout)
	defer cancel()
	if err := t.waitPing(ctx); err != nil {
		return err
	}
	if err := t.waitProgrammed(ctx); err != nil {
		return err
	}
	t.cfg.Logf("traefik: ready on %s", t.Addr)
	return nil
}

// createAccess creates the ServiceAccount and the RBAC that Traefik's
// Kubernetes Gateway provider needs (as its documentation lists them) and
// returns a token for the ServiceAccount.
func (t *Traefik) createAccess(ctx context.Context) (string, error) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: t.name(), Namespace: t.Namespace}}
	if _, err := t.client.CoreV1().ServiceAccounts(t.Namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("create ServiceAccount: %w", err)
	}
	read := []string{"get", "list", "watch"}
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: t.name()},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"services", "secrets", "configmaps"}, Verbs: read},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"list", "watch"}},
			{
				APIGroups: []string{"gateway.networking.k8s.io"},
				Resources: []string{"gatewayclasses", "gateways", "httproutes", "grpcroutes", "tcproutes", "tlsroutes",
					"referencegrants", "backendtlspolicies"},
				Verbs: read,
			},
			{
				APIGroups: []string{"gateway.networking.k8s.io"},
				Resources: []string{"gatewayclasses/status", "gateways/status", "httproutes/status", "grpcroutes/status",
					"tcproutes/status", "tlsroutes/status", "referencegrants/status", "backendtlspolicies/status"},
				Verbs: []string{"update"},
			},
		},
	}
	if t.cfg.CRDProvider {
		// As kubernetes-crd-rbac.yml in Traefik's documentation lists them,
		// less what only its Ingress provider and OpenTelemetry need.
		role.Rules = append(role.Rules,
			rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: read},
			rbacv1.PolicyRule{
				APIGroups: []string{"traefik.io"},
				Resources: []string{"middlewares", "middlewaretcps", "ingressroutes", "traefikservices", "ingressroutetcps",
					"ingressrouteudps", "tlsoptions", "tlsstores", "serverstransports", "serverstransporttcps"},
				Verbs: read,
			})
	}
	if _, err := t.client.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("create ClusterRole: %w", err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: t.name()},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: t.name()},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: t.name(), Namespace: t.Namespace}},
	}
	if _, err := t.client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("create ClusterRoleBinding: %w", err)
	}
	expiry := int64(24 * time.Hour / time.Second)
	tr, err := t.client.CoreV1().ServiceAccounts(t.Namespace).CreateToken(ctx, t.name(), &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("request a token for ServiceAccount %s/%s: %w", t.Namespace, t.name(), err)
	}
	return tr.Status.Token, nil
}

// writeCA writes the API server's CA for Traefik.
func (t *Traefik) writeCA() (string, error) {
	ca := t.cfg.Admin.CAData
	if len(ca) == 0 && t.cfg.Admin.CAFile != "" {
		var err error
		if ca, err = os.ReadFile(t.cfg.Admin.CAFile); err != nil {
			return "", err
		}
	}
	if len(ca) == 0 {
		return "", errors.New("Config.Admin has no CA")
	}
	f := filepath.Join(t.dir, "ca.crt")
	return f, os.WriteFile(f, ca, 0o600)
}

func (t *Traefik) createGateway(ctx context.Context, port int) error {
	gc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1",
		"kind":       "GatewayClass",
		"metadata":   map[string]any{"name": t.GatewayClass, "labels": map[string]any{instanceLabel: t.id}},
		"spec":       map[string]any{"controllerName": ControllerName},
	}}
	if _, err := t.dyn.Resource(gatewayClasses).Create(ctx, gc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create GatewayClass: %w", err)
	}
	gw := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1",
		"kind":       "Gateway",
		"metadata":   map[string]any{"name": t.Gateway, "namespace": t.Namespace},
		"spec": map[string]any{
			"gatewayClassName": t.GatewayClass,
			"listeners": []any{map[string]any{
				"name":          "web",
				"protocol":      "HTTP",
				"port":          int64(port),
				"allowedRoutes": map[string]any{"namespaces": map[string]any{"from": "All"}},
			}},
		},
	}}
	if _, err := t.dyn.Resource(gateways).Namespace(t.Namespace).Create(ctx, gw, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create Gateway: %w", err)
	}
	return nil
}

// waitPing polls Traefik's ping until it answers 200.
func (t *Traefik) waitPing(ctx context.Context) error {
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	return t.poll(ctx, "answer its ping", func() (bool, error) {
		resp, err := client.Get(t.PingURL)
		if err != nil {
			return false, nil
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

// waitProgrammed polls the Gateway until Traefik has set its condition
// Programmed to True.
func (t *Traefik) waitProgrammed(ctx context.Context) error {
	return t.poll(ctx, "program Gateway "+t.Namespace+"/"+t.Gateway, func() (bool, error) {
		gw, err := t.dyn.Resource(gateways).Namespace(t.Namespace).Get(ctx, t.Gateway, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		conds, _, _ := unstructured.NestedSlice(gw.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] == "Programmed" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})
}

// poll calls cond every 100ms until it is true, Traefik exits or ctx ends.
func (t *Traefik) poll(ctx context.Context, what string, cond func() (bool, error)) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-t.exited:
			return fmt.Errorf("traefik exited (%v) before it could %s; its log:\n%s", t.cmd.ProcessState, what, t.Logs())
		case <-ctx.Done():
			return fmt.Errorf("traefik did not %s: %w; its log:\n%s", what, ctx.Err(), t.Logs())
		case <-tick.C:
		}
	}
}

// Logs returns the end of Traefik's output (the last 256 KiB).
func (t *Traefik) Logs() string { return t.logs.String() }

// Stop ends Traefik (SIGTERM, then SIGKILL after 10s) and deletes the
// Gateway, GatewayClass, RBAC and ServiceAccount that Start created. It is
// safe to call more than once.
func (t *Traefik) Stop() error {
	t.stopOnce.Do(func() {
		var errs []error
		if t.cmd != nil && t.cmd.Process != nil {
			terminate(t.cmd.Process.Pid, t.exited)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		del := func(what string, err error) {
			if err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("delete %s: %w", what, err))
			}
		}
		if t.client != nil {
			del("Gateway", t.dyn.Resource(gateways).Namespace(t.Namespace).Delete(ctx, t.Gateway, metav1.DeleteOptions{}))
			del("GatewayClass", t.dyn.Resource(gatewayClasses).Delete(ctx, t.GatewayClass, metav1.DeleteOptions{}))
			del("ClusterRoleBinding", t.client.RbacV1().ClusterRoleBindings().Delete(ctx, t.name(), metav1.DeleteOptions{}))
			del("ClusterRole", t.client.RbacV1().ClusterRoles().Delete(ctx, t.name(), metav1.DeleteOptions{}))
			del("ServiceAccount", t.client.CoreV1().ServiceAccounts(t.Namespace).Delete(ctx, t.name(), metav1.DeleteOptions{}))
		}
		if t.dir != "" {
			if err := os.RemoveAll(t.dir); err != nil {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			t.stopErr = fmt.Errorf("stop traefik: %w", errors.Join(errs...))
		}
	})
	return t.stopErr
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func withoutEnv(env []string, name string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu      sync.Mutex
	max     int
	buf     []byte
	dropped bool
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
		b.dropped = true
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropped {
		return "[...]\n" + string(b.buf)
	}
	return string(b.buf)
}

// terminate ends the process group of pid: SIGTERM, then SIGKILL if it has
// not exited (exited closed) within 10s.
func terminate(pid int, exited <-chan struct{}) {
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-exited
	}
}
