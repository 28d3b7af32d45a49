package webhook

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// URLError says why a webhook URL is not acceptable, in a sentence for the
// admin who typed it.
type URLError struct{ Reason string }

func (e *URLError) Error() string { return e.Reason }

// TargetRefusedError: the URL's host is (or resolved to) an address
// webhooks may not reach: loopback, private, link-local, or otherwise
// internal, unless private targets are allowed.
type TargetRefusedError struct {
	Host string
	IP   netip.Addr
}

func (e *TargetRefusedError) Error() string {
	return fmt.Sprintf("%s is a private or internal address (%s): webhooks may not reach it unless POSTDESK_WEBHOOK_ALLOW_PRIVATE is set", e.Host, e.IP)
}

// CheckURL checks a webhook URL when it is saved: absolute http or https,
// a host, no user name or password in it, at most 2,000 bytes, and, unless
// allowPrivate, no host that is literally a private address or localhost.
// A name that resolves to a private address is refused when delivering
// (NewClient), whatever it resolved to when saved.
func CheckURL(raw string, allowPrivate bool) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, &URLError{"Enter the URL that should receive the events."}
	}
	if len(raw) > 2000 {
		return nil, &URLError{"The URL is too long (at most 2,000 characters)."}
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return nil, &URLError{"Enter a full URL, starting with https:// (or http://)."}
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, &URLError{fmt.Sprintf("Webhooks are sent over https or http only, not %s.", u.Scheme)}
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, &URLError{"The URL has no host name."}
	}
	if u.User != nil {
		return nil, &URLError{"Leave the user name and password out of the URL: the signature authenticates each request."}
	}
	if u.Fragment != "" {
		return nil, &URLError{"Leave the #fragment out of the URL."}
	}
	if host := strings.ToLower(strings.TrimSuffix(u.Hostname(), ".")); numericName(host) {
		if _, err := netip.ParseAddr(host); err != nil {
			// 2130706433, 127.1, 0x7f.1: forms of an address some tools
			// accept and Go's resolver does not (it looks them up as
			// names, and fails): saved, it would fail every delivery.
			return nil, &URLError{fmt.Sprintf("%s is not a host name or an IP address: write an IPv4 address as four numbers, like 203.0.113.7.", host)}
		}
	}
	if !allowPrivate {
		host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
		if host == "localhost" || strings.HasSuffix(host, ".localhost") {
			return nil, &TargetRefusedError{Host: host, IP: netip.MustParseAddr("127.0.0.1")}
		}
		if ip, err := netip.ParseAddr(host); err == nil && !Public(ip) {
			return nil, &TargetRefusedError{Host: host, IP: ip}
		}
	}
	return u, nil
}

// numericName reports whether host's last label is a number (decimal, or
// hexadecimal with 0x): no top-level domain is, so such a host can only
// be meant as an IPv4 address.
func numericName(host string) bool {
	last := host[strings.LastIndexByte(host, '.')+1:]
	if hex, ok := strings.CutPrefix(last, "0x"); ok {
		return strings.Trim(hex, "0123456789abcdef") == ""
	}
	return last != "" && strings.Trim(last, "0123456789") == ""
}

// internalPrefixes are ranges no webhook may reach by default, beside
// what netip's predicates name (RFC 6890 special-purpose registries).
var internalPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),     // "this network"
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT (RFC 6598)
	netip.MustParsePrefix("192.0.0.0/24"),  // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"), // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),   // reserved, and broadcast
	netip.MustParsePrefix("64:ff9b::/96"),  // NAT64: an IPv4 address inside
	netip.MustParsePrefix("2002::/16"),     // 6to4: an IPv4 address inside
}

// Public reports whether ip is an ordinary internet address: not loopback,
// private (RFC 1918, RFC 4193), link-local, multicast, unspecified or
// another internal range.
func Public(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return false
	}
	for _, p := range internalPrefixes {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// ClientOptions configures NewClient.
type ClientOptions struct {
	// AllowPrivate lets deliveries reach private and loopback addresses
	// (POSTDESK_WEBHOOK_ALLOW_PRIVATE; tests, or a receiver inside the
	// company's network).
	AllowPrivate bool
	// Timeout bounds a whole attempt (default 10 s).
	Timeout time.Duration
}

// NewClient returns the HTTP client deliveries use: no proxy from the
// environment, no redirects followed (the 3xx answer is the outcome), the
// timeout, and, unless AllowPrivate, a dialer that checks the address it
// is about to connect to (after DNS resolution, so a name that resolves to
// an internal address, or changes to one, is refused too).
func NewClient(opt ClientOptions) *http.Client {
	if opt.Timeout <= 0 {
		opt.Timeout = 10 * time.Second
	}
	d := &net.Dialer{Timeout: opt.Timeout, KeepAlive: 30 * time.Second}
	if !opt.AllowPrivate {
		d.Control = func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("webhook target %q: %w", address, err)
			}
			if !Public(ap.Addr()) {
				return &TargetRefusedError{Host: ap.Addr().String(), IP: ap.Addr()}
			}
			return nil
		}
	}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          20,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   opt.Timeout,
		ResponseHeaderTimeout: opt.Timeout,
	}
	return &http.Client{Transport: tr, Timeout: opt.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}
