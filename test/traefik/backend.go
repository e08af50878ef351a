package traefik

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/iter8-tools/iter8/test/testbed"
)

// Subnets 10.77.N.0/24 with N in [firstSubnet, lastSubnet] are handed out
// to backends; the lock files live in lockDir.
const (
	firstSubnet = 1
	lastSubnet  = 254
	lockDir     = "/run/iter8-testbed-netns"
)

// BackendConfig says what one backend serves.
type BackendConfig struct {
	// SampleApp is the sample app's executable (see [BuildSampleApp]).
	SampleApp string
	// Version is the version the sample app reports.
	Version string
	// Port is the port it listens on, inside its namespace (default 8080,
	// the release chart's default container port).
	Port int
	// Conversion, in [0, 1], is the share of users who buy, passed as the
	// sample app's --conversion: the answers to a converting user's
	// requests (?user=U) carry X-Purchase: <amount>. 0, the default,
	// means nobody buys (and no flag is passed).
	Conversion float64
	// Args are more flags for the sample app (such as --latency).
	Args []string
	// StartTimeout bounds how long the sample app may take to answer
	// (default 30s).
	StartTimeout time.Duration
}

// Backend is a sample app running in a network namespace of its own. Its
// fields are read-only.
type Backend struct {
	// NetNS is the network namespace's name.
	NetNS string
	// IP is the namespace's address, and Addr IP:port the sample app's.
	IP, Addr string
	// URL is "http://" + Addr, reachable from the host.
	URL string
	// Version is the version the sample app reports.
	Version string
	// HostLink is the host's end of the veth pair.
	HostLink string

	subnet   int
	lock     *os.File
	cmd      *exec.Cmd
	exited   chan struct{}
	logs     *tailBuffer
	stopOnce sync.Once
	stopErr  error
}

// BuildSampleApp builds test/sampleapp/cmd/sampleapp into dir and returns
// the executable's path.
func BuildSampleApp(ctx context.Context, dir string) (string, error) {
	root, err := testbed.RepoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "sampleapp")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./test/sampleapp/cmd/sampleapp")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.WaitDelay = 10 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the sample app: %v\n%s", err, out)
	}
	return bin, nil
}

// StartBackend makes a network namespace with a veth link to the host and
// starts the sample app in it, on the namespace's address, and waits until it
// answers from the host. On error everything made so far is removed.
func StartBackend(ctx context.Context, cfg BackendConfig) (*Backend, error) {
	if cfg.SampleApp == "" || cfg.Version == "" {
		return nil, errors.New("start backend: BackendConfig.SampleApp and Version are required")
	}
	if math.IsNaN(cfg.Conversion) || cfg.Conversion < 0 || cfg.Conversion > 1 {
		return nil, fmt.Errorf("start backend %s: conversion %v: want a fraction in [0, 1]", cfg.Version, cfg.Conversion)
	}
	if cfg.Port == 0 {
		cfg.Port = 8080
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	b := &Backend{Version: cfg.Version, logs: newTailBuffer(64 << 10)}
	if err := b.start(ctx, cfg); err != nil {
		if stopErr := b.Stop(); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
		return nil, fmt.Errorf("start backend %s: %w", cfg.Version, err)
	}
	return b, nil
}

func (b *Backend) start(ctx context.Context, cfg BackendConfig) error {
	if err := b.allocate(); err != nil {
		return err
	}
	n := b.subnet
	b.NetNS = fmt.Sprintf("iter8-tb-%d", n)
	b.HostLink = fmt.Sprintf("i8h%d", n)
	peer := fmt.Sprintf("i8n%d", n)
	b.IP = fmt.Sprintf("10.77.%d.2", n)
	b.Addr = net.JoinHostPort(b.IP, strconv.Itoa(cfg.Port))
	b.URL = "http://" + b.Addr
	// Leftovers of a run that was killed while holding this subnet.
	_ = ipCmd(ctx, "link", "del", b.HostLink)
	_ = ipCmd(ctx, "netns", "del", b.NetNS)

	steps := [][]string{
		{"netns", "add", b.NetNS},
		{"link", "add", b.HostLink, "type", "veth", "peer", "name", peer},
		{"link", "set", peer, "netns", b.NetNS},
		{"addr", "add", fmt.Sprintf("10.77.%d.1/24", n), "dev", b.HostLink},
		{"link", "set", b.HostLink, "up"},
		{"-n", b.NetNS, "addr", "add", b.IP + "/24", "dev", peer},
		{"-n", b.NetNS, "link", "set", peer, "up"},
		{"-n", b.NetNS, "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if err := ipCmd(ctx, s...); err != nil {
			return err
		}
	}

	args := append([]string{"netns", "exec", b.NetNS, cfg.SampleApp,
		"--listen", b.Addr, "--allow-non-loopback", "--version", cfg.Version}, cfg.Args...)
	if cfg.Conversion != 0 {
		args = append(args, "--conversion", strconv.FormatFloat(cfg.Conversion, 'g', -1, 64))
	}
	b.cmd = exec.Command("ip", args...)
	b.cmd.Stdout, b.cmd.Stderr = b.logs, b.logs
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := b.cmd.Start(); err != nil {
		return err
	}
	b.exited = make(chan struct{})
	go func() {
		_ = b.cmd.Wait()
		close(b.exited)
	}()

	ctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := client.Get(b.URL + "/healthz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-b.exited:
			return fmt.Errorf("the sample app exited (%v); its output:\n%s", b.cmd.ProcessState, b.logs)
		case <-ctx.Done():
			return fmt.Errorf("the sample app does not answer on %s: %v (last: %v); its output:\n%s", b.URL, ctx.Err(), err, b.logs)
		case <-tick.C:
		}
	}
}

// allocate takes the first subnet whose lock file no other process holds;
// the lock is held until Stop (or this process ends).
func (b *Backend) allocate() error {
	if err := os.MkdirAll(lockDir, 0o700); err != nil {
		return err
	}
	for n := firstSubnet; n <= lastSubnet; n++ {
		f, err := os.OpenFile(filepath.Join(lockDir, strconv.Itoa(n)+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			_ = f.Close()
			continue
		}
		b.subnet, b.lock = n, f
		return nil
	}
	return fmt.Errorf("no free subnet 10.77.N.0/24 (all %d locked in %s)", lastSubnet-firstSubnet+1, lockDir)
}

// Output returns the end of the sample app's output.
func (b *Backend) Output() string { return b.logs.String() }

// Stop ends the sample app (SIGTERM, then SIGKILL after 10s), deletes the
// link and the namespace and frees the subnet. It is safe to call more than
// once.
func (b *Backend) Stop() error {
	b.stopOnce.Do(func() {
		var errs []error
		if b.cmd != nil && b.cmd.Process != nil {
			terminate(b.cmd.Process.Pid, b.exited)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if b.HostLink != "" {
			// Deleting one end of a veth pair deletes the other.
			if err := ipCmd(ctx, "link", "del", b.HostLink); err != nil && linkExists(ctx, b.HostLink) {
				errs = append(errs, err)
			}
		}
		if b.NetNS != "" {
			if err := ipCmd(ctx, "netns", "del", b.NetNS); err != nil && netnsExists(b.NetNS) {
				errs = append(errs, err)
			}
		}
		if b.lock != nil {
			_ = b.lock.Close() // releases the flock
		}
		if len(errs) > 0 {
			b.stopErr = fmt.Errorf("stop backend %s: %w", b.Version, errors.Join(errs...))
		}
	})
	return b.stopErr
}

func ipCmd(ctx context.Context, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ip %v: %v: %s", args, err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}

func linkExists(ctx context.Context, name string) bool {
	return ipCmd(ctx, "link", "show", name) == nil
}

func netnsExists(name string) bool {
	_, err := os.Stat(filepath.Join("/run/netns", name))
	return err == nil
}

// Addresses maps the release chart's Pods to their versions' backends: its
// PodAddress method is a node.Config.PodAddress, which the harness calls when
// it starts a Deployment's Pod. The zero value is empty and ready to use; it
// is safe for concurrent use.
type Addresses struct {
	mu  sync.Mutex
	ips map[string]string // namespace/app/version -> IP
}

// Set makes PodAddress give ip to the Pods labelled iter8.tools/app=app and
// iter8.tools/version=version (as the release chart labels a version's Pods)
// in namespace; the returned function undoes it. Set it before the Pods
// start: a Pod keeps the address it started with.
func (a *Addresses) Set(namespace, app, version, ip string) (remove func()) {
	key := namespace + "/" + app + "/" + version
	a.mu.Lock()
	if a.ips == nil {
		a.ips = map[string]string{}
	}
	a.ips[key] = ip
	a.mu.Unlock()
	return func() {
		a.mu.Lock()
		if a.ips[key] == ip {
			delete(a.ips, key)
		}
		a.mu.Unlock()
	}
}

// PodAddress returns the IP set for the Pod's namespace, app and version, or
// "" (the harness's fake range) when none is.
func (a *Addresses) PodAddress(pod *corev1.Pod) string {
	key := pod.Namespace + "/" + pod.Labels["iter8.tools/app"] + "/" + pod.Labels["iter8.tools/version"]
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ips[key]
}
