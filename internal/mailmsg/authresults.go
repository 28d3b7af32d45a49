package mailmsg

import (
	"strings"

	"github.com/emersion/go-message/textproto"
)

// authFailure reads the topmost Authentication-Results field (RFC 8601),
// the one the receiving server added last (a sender can write any number
// of such fields below it, never above), and returns the first check it
// says failed ("dmarc=fail", "spf=softfail", Microsoft's "compauth=fail"),
// or "" when none did or there is no such field.
//
// Microsoft's compauth decides when present; else DMARC when it was
// evaluated (a pass there outweighs an SPF failure: a forwarded email
// keeps its DKIM signature); without either, an SPF failure counts only
// when no DKIM signature passed.
func authFailure(h textproto.Header) string {
	v := h.Get("Authentication-Results")
	if strings.TrimSpace(v) == "" {
		return ""
	}
	results := map[string]string{}
	for _, clause := range strings.Split(stripComments(v), ";") {
		clause = strings.TrimSpace(clause)
		method, rest, ok := strings.Cut(clause, "=")
		if !ok || strings.ContainsAny(strings.TrimSpace(method), " \t") {
			continue // the authserv-id, or "none"
		}
		method = strings.ToLower(strings.TrimSpace(method))
		result := strings.ToLower(strings.Fields(rest + " ")[0])
		if _, seen := results[method]; !seen || result == "pass" {
			results[method] = result // any passing signature of several counts
		}
	}
	// Microsoft's composite verdict, when it gives one, is its last word:
	// it passes a DMARC failure it trusts through ARC (a forwarder, a list).
	switch results["compauth"] {
	case "fail":
		return "compauth=fail"
	case "pass", "softpass":
		return ""
	}
	switch results["dmarc"] {
	case "fail":
		return "dmarc=fail"
	case "pass":
		return ""
	}
	if spf := results["spf"]; (spf == "fail" || spf == "softfail") && results["dkim"] != "pass" {
		return "spf=" + spf
	}
	return ""
}
