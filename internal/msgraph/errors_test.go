package msgraph

import (
	"net/http"
	"testing"
	"time"
)

func TestRetryAfterParsing(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"7", 7 * time.Second},
		{" 0 ", 0},
		{"-3", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"soon", 0},
	} {
		if got := retryAfter(c.in, now); got != c.want {
			t.Errorf("retryAfter(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		status      int
		code, inner string
		want        Kind
	}{
		{410, "", "", KindSyncReset},
		{400, "syncStateNotFound", "", KindSyncReset},
		{400, "BadRequest", "resyncRequired", KindSyncReset},
		{400, "ErrorInvalidSyncStateData", "", KindSyncReset},
		{400, "ErrorMimeContentInvalidBase64String", "", KindInvalidMIME},
		{400, "ErrorInvalidRecipients", "", KindBadRequest},
		{429, "ApplicationThrottled", "", KindThrottled},
		{503, "", "", KindUnavailable},
		{504, "", "", KindUnavailable},
		{500, "", "", KindTemporary},
		{401, "InvalidAuthenticationToken", "", KindAuth},
		{403, "ErrorAccessDenied", "", KindForbidden},
		{404, "ErrorItemNotFound", "", KindNotFound},
		{413, "", "", KindPermanent},
	} {
		if got := classify(c.status, c.code, c.inner); got != c.want {
			t.Errorf("classify(%d, %q, %q) = %s, want %s", c.status, c.code, c.inner, got, c.want)
		}
	}
}
