package server

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
)

// A graceful shutdown waits for the requests being answered, not for
// connections that are still sending one: a tablet whose mobile data
// dropped in the middle of a push leaves a connection the server would
// otherwise wait on until its read timeout (a minute), and every restart
// of an instance with it. conns keeps the server's connections and which
// of them a handler is answering; once Shutdown has given the requests
// on their way a moment, it closes the others. A request cut so was
// never answered and nothing of it was applied, so its device sends it
// again; one answered while its connection closes was applied once, and
// its retry is answered from the push's record.
type conns struct {
	mu   sync.Mutex
	open map[net.Conn]bool // the connection -> a handler answers on it
	ln   *trackingListener
	shut bool // Shutdown began
}

// listener returns ln with its connections kept in c; if Shutdown has
// begun, it is closed already, so that serving on it ends at once.
func (c *conns) listener(ln net.Listener) net.Listener {
	tl := &trackingListener{Listener: ln, c: c}
	c.mu.Lock()
	c.ln = tl
	shut := c.shut
	c.mu.Unlock()
	if shut {
		tl.Close()
	}
	return tl
}

// closeListener closes the listener, whether or not the app serves on it
// yet: a Shutdown that comes while Serve is still getting ready would
// otherwise find no listener to close, and the app would then serve on
// for ever.
func (c *conns) closeListener() {
	c.mu.Lock()
	c.shut = true
	tl := c.ln
	c.mu.Unlock()
	if tl != nil {
		tl.Close()
	}
}

type trackingListener struct {
	net.Listener
	c      *conns
	once   sync.Once
	closed error
}

// Close closes the listener once; closing it again is no error, since
// both Shutdown and the app close it.
func (l *trackingListener) Close() error {
	l.once.Do(func() { l.closed = l.Listener.Close() })
	return l.closed
}

func (l *trackingListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: nc, c: l.c}
	l.c.mu.Lock()
	if l.c.open == nil {
		l.c.open = map[net.Conn]bool{}
	}
	l.c.open[tc] = false
	l.c.mu.Unlock()
	return tc, nil
}

type trackedConn struct {
	net.Conn
	c    *conns
	once sync.Once
}

func (tc *trackedConn) Close() error {
	tc.once.Do(func() {
		tc.c.mu.Lock()
		delete(tc.c.open, tc)
		tc.c.mu.Unlock()
	})
	return tc.Conn.Close()
}

// middleware marks the request's connection busy while its handlers run.
func (c *conns) middleware(ctx *fiber.Ctx) error {
	nc := ctx.Context().Conn()
	c.set(nc, true)
	defer c.set(nc, false)
	return ctx.Next()
}

func (c *conns) set(nc net.Conn, busy bool) {
	c.mu.Lock()
	if _, ok := c.open[nc]; ok {
		c.open[nc] = busy
	}
	c.mu.Unlock()
}

// closeIdle closes the connections no handler is answering on.
func (c *conns) closeIdle() {
	c.mu.Lock()
	var idle []net.Conn
	for nc, busy := range c.open {
		if !busy {
			idle = append(idle, nc)
		}
	}
	c.mu.Unlock()
	for _, nc := range idle {
		nc.Close()
	}
}

// shutdownGrace is how long Shutdown lets requests still being sent
// arrive before it closes the connections no handler answers on.
const shutdownGrace = time.Second

// shutdown runs shut (the app's graceful shutdown) and, after
// shutdownGrace, closes the idle connections again and again until it
// returns.
func (c *conns) shutdown(ctx context.Context, shut func(context.Context) error) error {
	c.closeListener()
	done := make(chan error, 1)
	go func() { done <- shut(ctx) }()
	grace := time.NewTimer(shutdownGrace)
	defer grace.Stop()
	select {
	case err := <-done:
		return err
	case <-grace.C:
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		c.closeIdle()
		select {
		case err := <-done:
			return err
		case <-tick.C:
		}
	}
}
