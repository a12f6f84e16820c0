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
	var r io.Reader
	gz := false
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
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
		return err
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
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 400 {
		var e struct {
			Error *wire.Error `json:"error"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error == nil {
			e.Error = &wire.Error{Code: wire.CodeInternal, Message: fmt.Sprintf("status %d without an error body", resp.StatusCode)}
		}
		return &APIError{Status: resp.StatusCode, Code: e.Error.Code, Field: e.Error.Field, Message: e.Error.Message, Expected: e.Error.Expected}
	}
	switch out := out.(type) {
	case nil:
	case *wire.PullResponse: // the largest answers have a reader of their own
		page, err := wire.ParsePullResponse(data)
		if err != nil {
			return fmt.Errorf("%s %s: answer: %w", method, path, err)
		}
		*out = *page
	default:
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: answer: %w", method, path, err)
		}
	}
	return nil
}

// authed makes a request as the device, refreshing the access token when
// it is missing, about to expire or refused.
func (c *Client) authed(ctx context.Context, method, path string, body, out any) error {
	dev, err := c.device()
	if err != nil {
		return err
	}
	base, err := dev.Meta(ctx, metaServer)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		c.mu.Lock()
		token, exp := c.access, c.accessExp
		c.mu.Unlock()
		if token == "" || c.opts.Now().After(exp.Add(-30*time.Second)) {
			if token, err = c.refresh(ctx, base); err != nil {
				return err
			}
		}
		err := c.call(ctx, base, method, path, token, body, out)
		var ae *APIError
		if attempt == 0 && errors.As(err, &ae) && ae.Code == wire.CodeUnauthorized {
			c.mu.Lock()
			c.access = ""
			c.mu.Unlock()
			continue
		}
		return err
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
