// Command podserver is the container of the node harness's tests of the
// Deployments' Pods that it runs. It records each start as a line (its
// hostname) in <data>/starts, writes <scratch>/hello, serves /readyz (200
// once <data>/ready exists, 503 before) and /info (JSON: what it sees of its
// Pod), and exits 0 on SIGTERM (after --drain).
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

const tokenDir = "/var/run/secrets/kubernetes.io/serviceaccount"

func main() {
	addr := flag.String("http-address", ":8080", "address to serve on")
	data := flag.String("data", "/data", "the persistent volume")
	scratch := flag.String("scratch", "/scratch", "the emptyDir volume")
	drain := flag.Duration("drain", 0, "how long to go on serving after SIGTERM before exiting 0")
	flag.Parse()
	host, _ := os.Hostname()
	name := os.Getenv("HOSTNAME")

	f, err := os.OpenFile(filepath.Join(*data, "starts"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o664)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := fmt.Fprintln(f, name); err != nil {
		log.Fatal(err)
	}
	_ = f.Close()
	if err := os.WriteFile(filepath.Join(*scratch, "hello"), []byte(name), 0o644); err != nil {
		log.Fatal(err)
	}
	_, rootErr := os.Create("/podserver-was-here")

	l, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("podserver %s (uid %d) on %s", name, os.Getuid(), l.Addr())
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if _, err := os.Stat(filepath.Join(*data, "ready")); err != nil {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	mux.HandleFunc("/info", func(w http.ResponseWriter, r *http.Request) {
		starts, _ := os.ReadFile(filepath.Join(*data, "starts"))
		info := map[string]any{
			"name": name, "uid": os.Getuid(), "host": host, "local": r.Context().Value(http.LocalAddrContextKey).(net.Addr).String(),
			"starts": strings.Fields(string(starts)), "rootReadOnly": rootErr != nil, "api": apiStatus(),
		}
		_ = json.NewEncoder(w).Encode(info)
	})
	// /dial?addr=host:port connects to addr from the Pod's network
	// namespace and answers the first line the server sends.
	mux.HandleFunc("/dial", func(w http.ResponseWriter, r *http.Request) {
		c, err := net.DialTimeout("tcp", r.URL.Query().Get("addr"), 5*time.Second)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		_, _ = w.Write([]byte(line))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		<-sig
		log.Print("SIGTERM")
		if *drain > 0 {
			time.Sleep(*drain)
			log.Printf("drained for %v", *drain)
		}
		os.Exit(0)
	}()
	log.Fatal(srv.Serve(l))
}

// apiStatus is the status of GET /version on the API server, reached as an
// in-cluster client would.
func apiStatus() string {
	ca, err := os.ReadFile(filepath.Join(tokenDir, "ca.crt"))
	if err != nil {
		return err.Error()
	}
	token, err := os.ReadFile(filepath.Join(tokenDir, "token"))
	if err != nil {
		return err.Error()
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest(http.MethodGet, "https://"+net.JoinHostPort(os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT"))+"/version", nil)
	req.Header.Set("Authorization", "Bearer "+string(token))
	resp, err := c.Do(req)
	if err != nil {
		return err.Error()
	}
	_ = resp.Body.Close()
	return resp.Status
}
