package oauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/postdesk/postdesk/internal/oauth"
)

// msError builds the error oauth2 returns for Microsoft's error JSON.
func msError(status int, oauthErr string, code int) error {
	desc := fmt.Sprintf("AADSTS%d: Some description.\r\nTrace ID: 1\r\nCorrelation ID: 2\r\nTimestamp: 2026-03-02 09:00:00Z", code)
	body, _ := json.Marshal(map[string]any{"error": oauthErr, "error_description": desc, "error_codes": []int{code}})
	return &oauth2.RetrieveError{Response: &http.Response{StatusCode: status}, Body: body, ErrorCode: oauthErr, ErrorDescription: desc}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	descOnly := &oauth2.RetrieveError{Response: &http.Response{StatusCode: 400}, Body: []byte("error=invalid_grant"),
		ErrorCode: "invalid_grant", ErrorDescription: "AADSTS50076: Due to a configuration change ... multi-factor"}
	google := &oauth2.RetrieveError{Response: &http.Response{StatusCode: 400},
		Body: []byte(`{"error":"invalid_grant","error_description":"Token has been expired or revoked."}`), ErrorCode: "invalid_grant", ErrorDescription: "Token has been expired or revoked."}
	netErr := &url.Error{Op: "Post", URL: "https://login.example/token", Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}
	tests := []struct {
		name   string
		err    error
		kind   oauth.FailureKind
		code   string
		reason string // a fragment
	}{
		{"700082 inactivity", msError(400, "invalid_grant", 700082), oauth.Permanent, "AADSTS700082", "not used for 90 days"},
		{"70008 expired", msError(400, "invalid_grant", 70008), oauth.Permanent, "AADSTS70008", "inactivity"},
		{"50173 revoked", msError(400, "invalid_grant", 50173), oauth.Permanent, "AADSTS50173", "password was changed or reset"},
		{"50132 password", msError(400, "invalid_grant", 50132), oauth.Permanent, "AADSTS50132", "password was changed"},
		{"50133 session", msError(400, "invalid_grant", 50133), oauth.Permanent, "AADSTS50133", "password"},
		{"50055 password expired", msError(400, "invalid_grant", 50055), oauth.Permanent, "AADSTS50055", "password has expired"},
		{"50057 disabled", msError(400, "invalid_grant", 50057), oauth.Permanent, "AADSTS50057", "disabled"},
		{"70043 sign-in frequency", msError(400, "invalid_grant", 70043), oauth.Permanent, "AADSTS70043", "sign-in frequency"},
		{"50076 MFA", msError(400, "invalid_grant", 50076), oauth.Permanent, "AADSTS50076", "Multi-factor authentication is now required"},
		{"50079 MFA enrollment", msError(400, "invalid_grant", 50079), oauth.Permanent, "AADSTS50079", "multi-factor"},
		{"65001 consent", msError(400, "invalid_grant", 65001), oauth.Permanent, "AADSTS65001", "Consent"},
		{"65004 declined", msError(400, "invalid_grant", 65004), oauth.Permanent, "AADSTS65004", "declined"},
		{"53003 conditional access", msError(400, "invalid_grant", 53003), oauth.Permanent, "AADSTS53003", "Conditional Access"},
		{"code only in description", descOnly, oauth.Permanent, "AADSTS50076", "Multi-factor"},
		{"google revoked", google, oauth.Permanent, "invalid_grant", "revoked or has expired"},
		{"unknown invalid_grant", msError(400, "invalid_grant", 9999999), oauth.Permanent, "AADSTS9999999", "sign in again"},
		{"7000222 secret expired", msError(401, "invalid_client", 7000222), oauth.ProviderFault, "AADSTS7000222", "update the client secret"},
		{"7000215 secret wrong", msError(401, "invalid_client", 7000215), oauth.ProviderFault, "AADSTS7000215", "update the client secret"},
		{"invalid_client plain", &oauth2.RetrieveError{Response: &http.Response{StatusCode: 401}, ErrorCode: "invalid_client"}, oauth.ProviderFault, "invalid_client", "client ID and secret"},
		{"temporarily_unavailable", msError(503, "temporarily_unavailable", 90033), oauth.Temporary, "temporarily_unavailable", "temporarily"},
		{"500 no body", &oauth2.RetrieveError{Response: &http.Response{StatusCode: 500}, Body: []byte("<html>oops</html>")}, oauth.Temporary, "http_500", "temporarily"},
		{"429", &oauth2.RetrieveError{Response: &http.Response{StatusCode: 429}}, oauth.Temporary, "http_429", "temporarily"},
		{"network", fmt.Errorf("refresh: %w", netErr), oauth.Temporary, "network", "could not be reached"},
		{"timeout", context.DeadlineExceeded, oauth.Temporary, "timeout", "in time"},
		{"garbage", errors.New("oauth2: cannot parse json"), oauth.Temporary, "bad_response", "understood"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := oauth.Classify(tt.err)
			if f.Kind != tt.kind || f.Code != tt.code || !strings.Contains(f.Reason, tt.reason) {
				t.Errorf("Classify = %+v, want %s %s ~%q", f, tt.kind, tt.code, tt.reason)
			}
		})
	}
	if f := oauth.Classify(nil); f != (oauth.Failure{}) {
		t.Errorf("Classify(nil) = %+v", f)
	}
}

func TestProviderErrorIs(t *testing.T) {
	t.Parallel()
	pe := &oauth.ProviderError{MailboxID: 3, Op: "refresh", Failure: oauth.Classify(msError(400, "invalid_grant", 700082))}
	if !errors.Is(pe, oauth.ErrNeedsReauth) || errors.Is(pe, oauth.ErrTemporary) || errors.Is(pe, oauth.ErrProviderFault) {
		t.Error("a permanent failure must match ErrNeedsReauth only")
	}
	if got := pe.Error(); !strings.Contains(got, "mailbox 3") || !strings.Contains(got, "AADSTS700082") || strings.Contains(got, "Trace ID") {
		t.Errorf("Error() = %q", got)
	}
}

func TestBackoffAndRetry(t *testing.T) {
	t.Parallel()
	b := oauth.Backoff{Attempts: 4, Base: time.Second, Max: 5 * time.Second}
	for attempt, max := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second} {
		for range 20 {
			if d := b.Delay(attempt); d < max/2 || d > max {
				t.Fatalf("Delay(%d) = %v, want within [%v, %v]", attempt, d, max/2, max)
			}
		}
	}
	var slept []time.Duration
	sleep := func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }
	calls := 0
	err := oauth.Retry(context.Background(), b, sleep, func(context.Context) error {
		calls++
		return msError(503, "temporarily_unavailable", 90033)
	})
	if err == nil || calls != 4 || len(slept) != 3 {
		t.Errorf("temporary: %d calls, %d sleeps, %v", calls, len(slept), err)
	}
	calls = 0
	err = oauth.Retry(context.Background(), b, sleep, func(context.Context) error {
		calls++
		return msError(400, "invalid_grant", 50173)
	})
	if err == nil || calls != 1 {
		t.Errorf("permanent failures are not retried: %d calls", calls)
	}
}
