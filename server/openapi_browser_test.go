package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// checkBrowser checks every answer of a loopback server that the browser
// of ctx receives, redirects included, against docs/openapi.yaml, as the
// tests' HTTP clients' answers are checked: a disagreement fails t. The
// body is read from the browser once it has loaded; one the browser no
// longer holds is not checked.
func checkBrowser(t *testing.T, ctx context.Context) {
	var (
		mu      sync.Mutex
		closing bool // no more bodies are read
		done    bool // the test has ended: nothing more is reported
		methods = map[network.RequestID]string{}
		heads   = map[network.RequestID]*http.Request{}
		answers = map[network.RequestID]*network.Response{}
		wg      sync.WaitGroup
	)
	check := func(req *http.Request, resp *network.Response, body []byte) {
		header := http.Header{}
		for k, v := range resp.Headers {
			for _, line := range strings.Split(fmt.Sprint(v), "\n") {
				header.Add(k, line)
			}
		}
		// The browser hands on the body decoded.
		header.Del("Content-Encoding")
		if err := apiCheck.Check(context.Background(), req, int(resp.Status), header, body); err != nil {
			mu.Lock()
			defer mu.Unlock()
			if !done {
				t.Errorf("the browser: %v", err)
			}
		}
	}
	local := func(url string) bool { return strings.HasPrefix(url, "http://127.0.0.1:") }
	chromedp.ListenTarget(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			mu.Lock()
			defer mu.Unlock()
			prev, hadPrev := methods[ev.RequestID]
			methods[ev.RequestID] = ev.Request.Method
			r := ev.RedirectResponse
			if r == nil || !hadPrev || !local(r.URL) || closing {
				return
			}
			// A redirect has no body to read. The check runs apart, so as
			// not to hold up the browser's events.
			if req, err := http.NewRequest(prev, r.URL, nil); err == nil {
				wg.Add(1)
				go func() {
					defer wg.Done()
					check(req, r, nil)
				}()
			}
		case *network.EventResponseReceived:
			if !local(ev.Response.URL) {
				return
			}
			mu.Lock()
			if req, err := http.NewRequest(methods[ev.RequestID], ev.Response.URL, nil); err == nil {
				heads[ev.RequestID], answers[ev.RequestID] = req, ev.Response
			}
			mu.Unlock()
		case *network.EventLoadingFinished:
			mu.Lock()
			req, resp := heads[ev.RequestID], answers[ev.RequestID]
			delete(heads, ev.RequestID)
			delete(answers, ev.RequestID)
			if req == nil || closing {
				mu.Unlock()
				return
			}
			wg.Add(1)
			mu.Unlock()
			go func() {
				defer wg.Done()
				body, err := network.GetResponseBody(ev.RequestID).Do(cdp.WithExecutor(ctx, chromedp.FromContext(ctx).Target))
				if err == nil {
					check(req, resp, body)
				}
			}()
		}
	})
	t.Cleanup(func() {
		mu.Lock()
		closing = true
		mu.Unlock()
		wg.Wait()
		mu.Lock()
		done = true
		mu.Unlock()
	})
}
