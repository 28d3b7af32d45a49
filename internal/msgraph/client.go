package msgraph

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Defaults of a Client.
const (
	// DefaultMaxInFlight is Outlook's limit of concurrent requests per app
	// and mailbox (MailboxConcurrency).
	DefaultMaxInFlight = 4
	// DefaultMaxAttempts bounds the tries of one call under 429/503.
	DefaultMaxAttempts = 6
	// DefaultMaxWait bounds the total back-off of one call.
	DefaultMaxWait = 2 * time.Minute
	// DefaultRequestTimeout bounds one attempt of a call whose answer is
	// read whole (not the streamed $value).
	DefaultRequestTimeout = 2 * time.Minute
	// BaseURL is Microsoft Graph's v1.0 endpoint.
	BaseURL = "https://graph.microsoft.com/v1.0"
)

// ErrForeignLink is returned when a nextLink or deltaLink does not point to
// the Client's BaseURL origin: the bearer token is never sent elsewhere.
var ErrForeignLink = errors.New("msgraph: link does not point to the Graph endpoint")

// Client talks to Graph for one mailbox. Set the fields, then use it from
// any number of goroutines; do not change the fields after the first call.
type Client struct {
	// BaseURL is "https://graph.microsoft.com/v1.0" or the stand-in's URL,
	// without a trailing slash. Empty: the real Graph.
	BaseURL string
	// HTTP sends the requests. Nil: a client with dial, TLS and
	// response-header timeouts (no overall timeout, $value is streamed).
	HTTP *http.Client
	// Token returns an access token for Graph; fresh=true forces a refresh
	// (after a 401). Required.
	Token func(ctx context.Context, fresh bool) (string, error)
	// User is "me" (or empty) for the signed-in user, else the mailbox's
	// address or id (a shared mailbox: its address).
	User string
	// MaxInFlight bounds the requests in flight; default DefaultMaxInFlight.
	MaxInFlight int
	// MaxAttempts and MaxWait bound the retries of one call under 429 and
	// 503; defaults DefaultMaxAttempts and DefaultMaxWait.
	MaxAttempts int
	MaxWait     time.Duration
	// RequestTimeout bounds one attempt of a non-streamed call; default
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
	// Logger receives a debug line per retry (never a token or a body).
	// Nil: discard.
	Logger *slog.Logger
	// Sleep waits d or until ctx is done (test hook; nil: a timer).
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand returns a number in [0,1) for jitter (test hook; nil: math/rand).
	Rand func() float64
	// Now is the time source for Retry-After dates (test hook; nil: time.Now).
	Now func() time.Time

	once sync.Once
	sem  chan struct{}
	http *http.Client
	log  *slog.Logger
}

func (c *Client) init() {
	c.once.Do(func() {
		n := c.MaxInFlight
		if n <= 0 {
			n = DefaultMaxInFlight
		}
		c.sem = make(chan struct{}, n)
		c.http = c.HTTP
		if c.http == nil {
			c.http = defaultHTTPClient(n)
		}
		c.log = c.Logger
		if c.log == nil {
			c.log = slog.New(slog.DiscardHandler)
		}
	})
}

func defaultHTTPClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 90 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   conns,
	}}
}

func (c *Client) base() string {
	if c.BaseURL == "" {
		return BaseURL
	}
	return strings.TrimSuffix(c.BaseURL, "/")
}

// userPath is "/me" or "/users/{user}".
func (c *Client) userPath() string {
	if c.User == "" || strings.EqualFold(c.User, "me") {
		return "/me"
	}
	return "/users/" + url.PathEscape(c.User)
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// call is one logical request, retried as the package documentation says.
type call struct {
	op     string
	method string
	url    string
	body   []byte // resent on each attempt
	header http.Header
	stream bool // the caller reads the body; no per-attempt timeout
	want   int  // the success status
}

// do runs cl and returns the successful response. Its body holds an
// in-flight slot until closed.
func (c *Client) do(ctx context.Context, cl call) (*http.Response, error) {
	c.init()
	if c.Token == nil {
		return nil, fmt.Errorf("msgraph: %s: Client.Token is nil", cl.op)
	}
	maxAttempts, maxWait := c.MaxAttempts, c.MaxWait
	if maxAttempts <= 0 {
		maxAttempts = DefaultMaxAttempts
	}
	if maxWait <= 0 {
		maxWait = DefaultMaxWait
	}
	var waited time.Duration
	fresh, refreshed := false, false
	for attempt := 1; ; attempt++ {
		token, err := c.Token(ctx, fresh)
		if err != nil {
			return nil, fmt.Errorf("msgraph: %s: get token: %w", cl.op, err)
		}
		fresh = false
		resp, cancel, err := c.attempt(ctx, cl, token)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("msgraph: %s: %w", cl.op, ctx.Err())
			}
			e := &Error{Kind: KindTemporary, Op: cl.op, Err: err}
			// A POST may have reached Graph: retrying could send twice.
			if cl.method != http.MethodGet {
				return nil, e
			}
			if !c.backoff(ctx, cl.op, attempt, maxAttempts, &waited, maxWait, e) {
				return nil, c.orCanceled(ctx, cl.op, e)
			}
			continue
		}
		if resp.StatusCode == cl.want {
			resp.Body = &slotBody{ReadCloser: resp.Body, release: func() { cancel(); c.release() }}
			return resp, nil
		}
		e := responseError(cl.op, resp, c.now())
		cancel()
		c.release()
		switch {
		case resp.StatusCode == http.StatusUnauthorized && !refreshed:
			// The token may have expired or been revoked since it was
			// issued: refresh once (Graph: InvalidAuthenticationToken).
			refreshed, fresh = true, true
			c.log.Debug("msgraph token refused, refreshing", "op", cl.op, "code", e.Code)
			continue
		case e.Kind == KindAuth:
			return nil, e
		case resp.StatusCode == http.StatusGatewayTimeout && cl.method != http.MethodGet:
			// The gateway gave up waiting: the POST may have taken effect.
			e.Kind = KindTemporary
			return nil, e
		case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusServiceUnavailable,
			resp.StatusCode == http.StatusGatewayTimeout && cl.method == http.MethodGet:
			if e.Kind == KindTemporary {
				e.Kind = KindUnavailable
			}
			if c.backoff(ctx, cl.op, attempt, maxAttempts, &waited, maxWait, e) {
				continue
			}
			return nil, c.orCanceled(ctx, cl.op, e)
		}
		return nil, e
	}
}

// attempt sends one request, holding an in-flight slot; on success the slot
// and the timeout stay held until the caller's release.
func (c *Client) attempt(ctx context.Context, cl call, token string) (*http.Response, context.CancelFunc, error) {
	if err := c.acquire(ctx); err != nil {
		return nil, nil, err
	}
	actx, cancel := ctx, context.CancelFunc(func() {})
	if !cl.stream {
		timeout := c.RequestTimeout
		if timeout <= 0 {
			timeout = DefaultRequestTimeout
		}
		actx, cancel = context.WithTimeout(ctx, timeout)
	}
	var body io.Reader
	if cl.body != nil {
		body = bytes.NewReader(cl.body)
	}
	req, err := http.NewRequestWithContext(actx, cl.method, cl.url, body)
	if err != nil {
		cancel()
		c.release()
		return nil, nil, err
	}
	for k, v := range cl.header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.http.Do(req)
	if err != nil {
		cancel()
		c.release()
		return nil, nil, err
	}
	return resp, cancel, nil
}

// orCanceled returns ctx's error when ctx ended during a back-off, else e.
func (c *Client) orCanceled(ctx context.Context, op string, e *Error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("msgraph: %s: %w", op, ctx.Err())
	}
	return e
}

func (c *Client) acquire(ctx context.Context) error {
	select {
	case c.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Client) release() { <-c.sem }

// backoff waits before the next attempt after e and reports whether to try
// again: not after maxAttempts, nor when the wait would pass maxWait.
// RFC 9110 10.2.3: Retry-After is honoured as a minimum; without it the
// wait grows exponentially from 1 s (cap 60 s), jittered to [d/2, d).
func (c *Client) backoff(ctx context.Context, op string, attempt, maxAttempts int, waited *time.Duration, maxWait time.Duration, e *Error) bool {
	if attempt >= maxAttempts {
		return false
	}
	r := rand.Float64
	if c.Rand != nil {
		r = c.Rand
	}
	var d time.Duration
	if e.RetryAfter > 0 {
		d = e.RetryAfter + time.Duration(r()*0.1*float64(e.RetryAfter))
	} else {
		d = min(time.Second<<(attempt-1), 60*time.Second)
		d = d/2 + time.Duration(r()*float64(d/2))
	}
	if *waited+d > maxWait {
		return false
	}
	*waited += d
	c.log.Debug("msgraph retry", "op", op, "status", e.Status, "code", e.Code, "attempt", attempt, "delay", d)
	sleep := c.Sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	return sleep(ctx, d) == nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// slotBody releases the request's in-flight slot once, on Close.
type slotBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (b *slotBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}

// sameOrigin reports whether link has the scheme and host of the base URL.
func (c *Client) sameOrigin(link string) bool {
	u, err := url.Parse(link)
	if err != nil {
		return false
	}
	b, err := url.Parse(c.base())
	if err != nil {
		return false
	}
	return strings.EqualFold(u.Scheme, b.Scheme) && strings.EqualFold(u.Host, b.Host)
}
