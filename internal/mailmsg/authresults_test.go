package mailmsg

import (
	"testing"

	"github.com/emersion/go-message/textproto"
)

// Only the topmost Authentication-Results counts (the receiving server's;
// a sender writes any below it), DMARC decides when evaluated, and an SPF
// failure counts only without a passing DKIM signature.
func TestAuthFailure(t *testing.T) {
	for _, c := range []struct {
		name string
		ar   []string // top first
		want string
	}{
		{"none", nil, ""},
		{"gmail pass", []string{"mx.google.com; dkim=pass header.i=@customer.test; spf=pass (google.com: domain of x) smtp.mailfrom=x@customer.test; dmarc=pass (p=REJECT) header.from=customer.test"}, ""},
		{"microsoft forged", []string{"spf=fail (sender IP is 203.0.113.9) smtp.mailfrom=evil.test; dkim=none (message not signed) header.d=none;dmarc=fail action=oreject header.from=acme.example;compauth=fail reason=000"}, "compauth=fail"},
		{"microsoft compauth only", []string{"spf=none smtp.mailfrom=x.test; dkim=none; dmarc=none action=none header.from=x.test;compauth=fail reason=601"}, "compauth=fail"},
		{"softfail without dkim", []string{"mx.example; spf=softfail smtp.mailfrom=x.test; dkim=none"}, "spf=softfail"},
		{"spf fail but dkim pass (forwarded)", []string{"mx.example; spf=fail smtp.mailfrom=x.test; dkim=fail header.d=y.test; dkim=pass header.d=x.test"}, ""},
		{"dmarc pass outweighs spf fail", []string{"mx.example; spf=fail smtp.mailfrom=x.test; dmarc=pass header.from=x.test"}, ""},
		{"a forged pass below the server's fail", []string{"mx.example; dmarc=fail header.from=acme.example", "evil.test; dmarc=pass header.from=acme.example"}, "dmarc=fail"},
		{"a forged fail below the server's pass", []string{"mx.example; dmarc=pass header.from=acme.example", "evil.test; dmarc=fail"}, ""},
		{"no results", []string{"mx.example; none"}, ""},
		{"microsoft passes a dmarc failure through arc", []string{"spf=fail smtp.mailfrom=list.test; dkim=fail; dmarc=fail action=none header.from=acme.example;compauth=pass reason=130"}, ""},
	} {
		var h textproto.Header
		for i := len(c.ar) - 1; i >= 0; i-- {
			h.Add("Authentication-Results", c.ar[i]) // Add puts a field on top
		}
		if got := authFailure(h); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
