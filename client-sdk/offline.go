package brygga

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"syscall"
)

// Unreachable reports whether err, returned by Sync, Enroll or another
// call to the server, means that the server could not be reached or the
// connection to it broke: no network, a name that does not resolve, a
// refused or reset connection, a timeout. Nothing is lost then: what the
// device recorded stays queued and goes with the next sync that reaches
// the server. An answer of the server (*APIError) is never unreachable,
// nor is a cancelled ctx.
func Unreachable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return false
	}
	var ue *url.Error
	var ne net.Error
	var oe *net.OpError
	var de *net.DNSError
	return (errors.As(err, &ue) && ue.Timeout()) || (errors.As(err, &ne) && ne.Timeout()) || errors.As(err, &oe) || errors.As(err, &de) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.DeadlineExceeded)
}
