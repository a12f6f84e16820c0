package server_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/brygga/brygga/server"
)

// TestShutdownCutsHalfSentRequests: a graceful shutdown does not wait on a
// connection whose request is still being sent (a tablet whose mobile data
// dropped in the middle of a push) until the read timeout of a minute; it
// closes it, while a connection that never sent anything and an idle
// keep-alive one go too, and it returns without its deadline passing.
func TestShutdownCutsHalfSentRequests(t *testing.T) {
	ctx := context.Background()
	srv, err := server.Open(ctx, server.Config{DBPath: testDB(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	addr := ln.Addr().String()
	client := &http.Client{Timeout: 5 * time.Second}
	for i := 0; ; i++ {
		resp, err := client.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close() // and the connection stays, idle
			break
		}
		if i == 100 {
			t.Fatalf("the server does not serve: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	half, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	if _, err := io.WriteString(half, "POST /v1/sync/push HTTP/1.1\r\nHost: brygga\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"protocol\":"); err != nil {
		t.Fatal(err)
	}
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	time.Sleep(100 * time.Millisecond) // the server has read what was sent

	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		t.Fatalf("shutdown: %v; it waited on a connection no request is answered on", err)
	}
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
	half.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := half.Read(make([]byte, 1)); err == nil {
		t.Errorf("the half-sent request's connection is still open (read %d bytes)", n)
	}
}

// TestShutdownBeforeServing: a Shutdown that comes while Serve is still
// getting ready (bringing the rollups up to date, before it listens) ends
// Serve, at whatever point it comes; Serve never goes on serving a
// listener no one will close.
func TestShutdownBeforeServing(t *testing.T) {
	ctx := context.Background()
	for i := range 5 {
		srv, err := server.Open(ctx, server.Config{DBPath: testDB(t)})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ln) }()
		time.Sleep(time.Duration(i) * time.Millisecond)
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown %d: %v", i, err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve %d: %v", i, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("serve %d goes on after its shutdown", i)
		}
		srv.Close()
	}
}
