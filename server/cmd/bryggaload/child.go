package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/brygga/brygga/server"
)

// childEnv, set in a child's environment, makes bryggaload (or its test
// binary) serve the database it names instead of measuring: many-devices
// runs the server in a process of its own, so that its memory is the
// server's alone.
const childEnv = "BRYGGALOAD_SERVE_DB"

// serveChild serves the database at path on a loopback port until ctx is
// done, printing "listening on URL" once it serves. Tokens live as long as
// startServer's.
func serveChild(ctx context.Context, path string, stdout io.Writer) error {
	srv, err := server.Open(ctx, server.Config{DBPath: path, AccessTTL: 6 * time.Hour})
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// child is the server running in a process of its own.
type child struct {
	cmd *exec.Cmd
	url string
}

// moveToChild stops serving in this process and serves the same database
// from a child process an instance, which ls then uses; ls.close stops
// them.
func (ls *loadServer) moveToChild(ctx context.Context) error {
	n := len(ls.urls)
	if err := ls.stopServing(); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	for i := range n {
		c, err := startChild(ctx, exe, ls.dbPath())
		if c != nil {
			ls.children = append(ls.children, c)
		}
		if err != nil {
			return err
		}
		ls.urls[i] = c.url
	}
	ls.url = ls.urls[0]
	return nil
}

// startChild starts a server process serving db.
func startChild(ctx context.Context, exe, db string) (*child, error) {
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"="+db)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd}
	re := regexp.MustCompile(`listening on (http://\S+)`)
	lines := bufio.NewScanner(out)
	found := make(chan string, 1)
	go func() {
		for lines.Scan() {
			if m := re.FindStringSubmatch(lines.Text()); m != nil {
				found <- m[1]
			}
		}
		close(found)
	}()
	select {
	case url, ok := <-found:
		if !ok {
			return c, errors.New("the server process ended before it served")
		}
		c.url = url
		return c, nil
	case <-time.After(30 * time.Second):
		return c, errors.New("the server process did not serve within 30 s")
	case <-ctx.Done():
		return c, ctx.Err()
	}
}

// stop ends the child process and waits for it.
func (c *child) stop() error {
	c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
		return <-done
	}
}

// peakRSS returns the child's peak resident memory (VmHWM) in bytes.
func (c *child) peakRSS() (int64, error) {
	return procStatus(c.cmd.Process.Pid, "VmHWM")
}

// peakRSS returns the largest peak resident memory of the server
// processes, each an instance.
func (ls *loadServer) peakRSS() (int64, error) {
	var peak int64
	for _, c := range ls.children {
		p, err := c.peakRSS()
		if err != nil {
			return 0, err
		}
		peak = max(peak, p)
	}
	return peak, nil
}

// childMain serves in place of measuring if this process is a child.
func childMain() (bool, error) {
	path := os.Getenv(childEnv)
	if path == "" {
		return false, nil
	}
	ctx, stop := signalContext()
	defer stop()
	return true, serveChild(ctx, strings.TrimSpace(path), os.Stdout)
}
