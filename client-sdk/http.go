package brygga

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/brygga/brygga/sync/wire"
)

// call makes one request to the server at base and decodes the JSON answer
// into out. Error answers become *APIError.
func (c *Client) call(ctx context.Context, base, method, path, token string, body, out any) error {
	resp, err := c.open(ctx, base, method, path, token, body)
	if err != nil {
		return err
	}
	return readAnswer(resp, method, path, out)
}

// open makes one request to the server at base and returns the answer once
// its status says it succeeded; the caller reads and closes its body. An
// error answer becomes an *APIError.
func (c *Client) open(ctx context.Context, base, method, path, token string, body any) (*http.Response, error) {
	var r io.Reader
	gz := false
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		if len(data) > 4096 {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			zw.Write(data)
			zw.Close()
			data, gz = buf.Bytes(), true
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(base, "/")+path, r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	c.noteEpoch(resp.Header.Get(wire.HeaderEpoch))
	if resp.StatusCode < 400 {
		return resp, nil
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	var e struct {
		Error *wire.Error `json:"error"`
	}
	if json.Unmarshal(data, &e) != nil || e.Error == nil {
		e.Error = &wire.Error{Code: wire.CodeInternal, Message: fmt.Sprintf("status %d without an error body", resp.StatusCode)}
	}
	return nil, &APIError{Status: resp.StatusCode, Code: e.Error.Code, Field: e.Error.Field, Message: e.Error.Message, Expected: e.Error.Expected}
}

// readAnswer reads a successful answer's JSON body into out and closes it.
func readAnswer(resp *http.Response, method, path string, out any) error {
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: answer: %w", method, path, err)
	}
	return nil
}

// readPage reads a pull answer into buf, which it may grow, and closes it.
// A page has a reader of its own, which leaves the changes' fields to be
// checked as they are decoded (replica.DecodePage); they alias the body,
// which readPage returns too, so that the caller can read the next page
// into the same array once it is done with this one.
func readPage(resp *http.Response, buf []byte) (*wire.PullResponse, []byte, error) {
	defer resp.Body.Close()
	b := bytes.NewBuffer(buf[:0])
	if _, err := b.ReadFrom(io.LimitReader(resp.Body, 64<<20)); err != nil {
		return nil, nil, fmt.Errorf("GET /v1/sync/pull: %w", err)
	}
	page, err := wire.ParsePullPage(b.Bytes())
	if err != nil {
		return nil, nil, fmt.Errorf("GET /v1/sync/pull: answer: %w", err)
	}
	return page, b.Bytes(), nil
}

// authed makes a request as the device, refreshing the access token when
// it is missing, about to expire or refused, and decodes the answer into
// out.
func (c *Client) authed(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.authedOpen(ctx, method, path, body)
	if err != nil {
		return err
	}
	return readAnswer(resp, method, path, out)
}

// authedOpen is authed up to the answer's status; the caller reads and
// closes its body.
func (c *Client) authedOpen(ctx context.Context, method, path string, body any) (*http.Response, error) {
	dev, err := c.device()
	if err != nil {
		return nil, err
	}
	base, err := dev.Meta(ctx, metaServer)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		c.mu.Lock()
		token, exp := c.access, c.accessExp
		c.mu.Unlock()
		if token == "" || c.opts.Now().After(exp.Add(-30*time.Second)) {
			if token, err = c.refresh(ctx, base); err != nil {
				return nil, err
			}
		}
		resp, err := c.open(ctx, base, method, path, token, body)
		var ae *APIError
		if attempt == 0 && errors.As(err, &ae) && ae.Code == wire.CodeUnauthorized {
			c.mu.Lock()
			c.access = ""
			c.mu.Unlock()
			continue
		}
		return resp, err
	}
}

// refresh exchanges the stored refresh token for a new pair and stores the
// new refresh token at once: each works only once.
func (c *Client) refresh(ctx context.Context, base string) (string, error) {
	dev, err := c.device()
	if err != nil {
		return "", err
	}
	rt, err := dev.Meta(ctx, metaRefresh)
	if err != nil {
		return "", err
	}
	if rt == "" {
		return "", ErrSessionEnded
	}
	var e enrolment
	if err := c.call(ctx, base, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": rt}, &e); err != nil {
		return "", err
	}
	if err := dev.SetMeta(ctx, metaRefresh, e.RefreshToken); err != nil {
		return "", err
	}
	exp := c.opts.Now().Add(time.Duration(e.ExpiresIn) * time.Second)
	c.mu.Lock()
	c.access, c.accessExp = e.AccessToken, exp
	c.mu.Unlock()
	if err := c.keepAccess(ctx, e.AccessToken, exp); err != nil {
		return "", err
	}
	return e.AccessToken, nil
}
