package node

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The network namespaces of the Pods whose containers the harness runs take
// subnets 10.78.N.0/24, N in [1, 254]: the host's end of the veth pair is
// 10.78.N.1 and the Pod's 10.78.N.2. A subnet is held through a lock file in
// podNetLockDir, so that harnesses of several test processes do not collide
// (test/traefik's backends use 10.77.N.0/24 and their own lock directory).
const (
	podNetLockDir = "/run/iter8-node-netns"
	podNetPrefix  = "10.78."
	podNetMax     = 254
)

// podNet is one Pod's network namespace, veth pair and, when the API server
// listens on loopback, the proxy that makes it reachable at the same address
// from inside the namespace.
type podNet struct {
	n        int
	lock     *os.File
	name     string // the namespace, under /run/netns
	hostLink string
	ip       string
	proxy    *apiProxy
	forwards []*apiProxy // ForwardLoopback's addresses
}

func (pn *podNet) path() string { return filepath.Join("/run/netns", pn.name) }

// setupNet makes a network namespace with lo up, a veth pair to the host,
// the address 10.78.N.2/24, a default route through the host and, for a
// loopback API server, a proxy to it on the same address and port inside the
// namespace (so that the ServiceAccount's in-cluster config and the API
// server's certificate work unchanged). On error it removes what it made.
func (h *Harness) setupNet(ctx context.Context) (*podNet, error) {
	pn := &podNet{}
	if err := pn.allocate(); err != nil {
		return nil, err
	}
	pn.name = fmt.Sprintf("iter8-pod-%d", pn.n)
	pn.hostLink = fmt.Sprintf("i8ph%d", pn.n)
	peer := fmt.Sprintf("i8pn%d", pn.n)
	gw := fmt.Sprintf("%s%d.1", podNetPrefix, pn.n)
	pn.ip = fmt.Sprintf("%s%d.2", podNetPrefix, pn.n)
	// Leftovers of a run that was killed while holding this subnet.
	_ = ipCmd(ctx, "link", "del", pn.hostLink)
	_ = ipCmd(ctx, "netns", "del", pn.name)
	steps := [][]string{
		{"netns", "add", pn.name},
		{"link", "add", pn.hostLink, "type", "veth", "peer", "name", peer},
		{"link", "set", peer, "netns", pn.name},
		{"addr", "add", gw + "/24", "dev", pn.hostLink},
		{"link", "set", pn.hostLink, "up"},
		{"-n", pn.name, "addr", "add", pn.ip + "/24", "dev", peer},
		{"-n", pn.name, "link", "set", peer, "up"},
		{"-n", pn.name, "link", "set", "lo", "up"},
		{"-n", pn.name, "route", "add", "default", "via", gw},
	}
	for _, s := range steps {
		if err := ipCmd(ctx, s...); err != nil {
			pn.teardown()
			return nil, err
		}
	}
	if ip := net.ParseIP(h.apiHost); ip == nil || ip.IsLoopback() {
		listen := "127.0.0.1"
		if ip != nil {
			listen = ip.String()
		}
		l, err := listenInNetNS(pn.path(), net.JoinHostPort(listen, h.apiPort))
		if err != nil {
			pn.teardown()
			return nil, fmt.Errorf("API server proxy in network namespace %s: %w", pn.name, err)
		}
		pn.proxy = newAPIProxy(l, net.JoinHostPort(h.apiHost, h.apiPort))
	}
	h.mu.Lock()
	forwards := slices.Clone(h.forwards)
	h.mu.Unlock()
	for _, addr := range forwards {
		l, err := listenInNetNS(pn.path(), addr)
		if err != nil {
			pn.teardown()
			return nil, fmt.Errorf("forward of %s into network namespace %s: %w", addr, pn.name, err)
		}
		pn.forwards = append(pn.forwards, newAPIProxy(l, addr))
	}
	return pn, nil
}

// ForwardLoopback makes addr, a host:port on this machine's loopback (a
// server a test started, such as a Redis), reachable at the same address
// from inside the network namespaces of the Pods run for RunDeploymentPods,
// as the API server is: each connection is proxied to addr in the host's
// namespace. It applies to the Pods whose network is set up after the call
// (so call it before installing what makes the Pods); a forward cannot be
// removed. Connections are dialed when accepted, so a server restarted on
// the same address is reached again.
func (h *Harness) ForwardLoopback(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("forward %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() || port == "" || port == "0" {
		return fmt.Errorf("forward %q: want a loopback IP address and a port", addr)
	}
	if host == h.apiHost && port == h.apiPort {
		return fmt.Errorf("forward %q: the API server is forwarded already", addr)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !slices.Contains(h.forwards, addr) {
		h.forwards = append(h.forwards, addr)
	}
	return nil
}

// allocate takes the first subnet whose lock no other process holds.
func (pn *podNet) allocate() error {
	if err := os.MkdirAll(podNetLockDir, 0o700); err != nil {
		return err
	}
	for n := 1; n <= podNetMax; n++ {
		f, err := os.OpenFile(filepath.Join(podNetLockDir, strconv.Itoa(n)+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			_ = f.Close()
			continue
		}
		pn.n, pn.lock = n, f
		return nil
	}
	return fmt.Errorf("no free Pod subnet %sN.0/24 (all locked in %s)", podNetPrefix, podNetLockDir)
}

// teardown stops the proxy, deletes the link (both ends) and the namespace
// and frees the subnet.
func (pn *podNet) teardown() {
	if pn.proxy != nil {
		pn.proxy.close()
	}
	for _, f := range pn.forwards {
		f.close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if pn.hostLink != "" {
		_ = ipCmd(ctx, "link", "del", pn.hostLink)
	}
	if pn.name != "" {
		_ = ipCmd(ctx, "netns", "del", pn.name)
	}
	if pn.lock != nil {
		_ = pn.lock.Close() // releases the flock
	}
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

// listenInNetNS opens a TCP listener in the network namespace at nsPath: a
// socket belongs to the namespace it was made in, whatever thread later
// uses it. The thread is locked while it is in the other namespace, and left
// locked (so that the runtime ends it) if it cannot return.
func listenInNetNS(nsPath, addr string) (net.Listener, error) {
	type result struct {
		l   net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer orig.Close()
		target, err := os.Open(nsPath)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("setns: %w", err)}
			return
		}
		l, lerr := net.Listen("tcp", addr)
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			if l != nil {
				_ = l.Close()
			}
			ch <- result{err: fmt.Errorf("setns back: %w", err)} // the thread stays locked and ends
			return
		}
		runtime.UnlockOSThread()
		ch <- result{l: l, err: lerr}
	}()
	r := <-ch
	return r.l, r.err
}

// apiProxy forwards the connections it accepts to target, from the host's
// network namespace.
type apiProxy struct {
	l      net.Listener
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
}

func newAPIProxy(l net.Listener, target string) *apiProxy {
	p := &apiProxy{l: l, target: target, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.forward(c)
			}()
		}
	}()
	return p
}

func (p *apiProxy) forward(c net.Conn) {
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		_ = c.Close()
		return
	}
	if !p.track(c, up) {
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	_ = c.Close()
	_ = up.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// track records the pair of connections, or closes them if the proxy is
// closed.
func (p *apiProxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range conns {
			_ = c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.conns[c] = true
	}
	return true
}

func (p *apiProxy) close() {
	_ = p.l.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
