package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/oauth2"
)

// FailureKind says what a failed token request means for a mailbox.
type FailureKind string

// Failure kinds.
const (
	// Permanent: the provider refused this authorization for good; the
	// mailbox needs an admin to sign in again.
	Permanent FailureKind = "permanent"
	// ProviderFault: the provider refused the application itself (client
	// secret expired or wrong, app unknown); fixed in the provider settings.
	ProviderFault FailureKind = "provider_fault"
	// Temporary: the provider or the network failed; retry later.
	Temporary FailureKind = "temporary"
)

// Failure is a classified token request failure. Code and Reason never
// contain a token.
type Failure struct {
	Kind   FailureKind
	Code   string // "AADSTS700082", "invalid_grant", "invalid_client", "http_503", "network"
	Reason string // plain words with the next step
	Status int    // the HTTP status, 0 when there was no answer
}

// aadReasons are Microsoft's AADSTS codes Postdesk knows, in plain words.
var aadReasons = map[int]struct {
	kind   FailureKind
	reason string
}{
	700082:  {Permanent, "The authorization expired because the mailbox was not used for 90 days: sign in again."},
	70008:   {Permanent, "The authorization expired through inactivity: sign in again."},
	50173:   {Permanent, "The password was changed or reset (or the account's sessions were revoked): sign in again."},
	50132:   {Permanent, "The password was changed or has expired: sign in again."},
	50133:   {Permanent, "The session ended because the password expired or was changed recently: sign in again."},
	50055:   {Permanent, "The account's password has expired: set a new password, then sign in again."},
	50057:   {Permanent, "The account is disabled: ask your Microsoft 365 administrator to enable it, then sign in again."},
	70043:   {Permanent, "Your organization's sign-in frequency policy requires a fresh sign-in: sign in again."},
	50076:   {Permanent, "Multi-factor authentication is now required: sign in again."},
	50079:   {Permanent, "The account must now enroll in multi-factor authentication: sign in again to set it up."},
	65001:   {Permanent, "Consent to Postdesk's permissions is missing: sign in again and accept them (or ask an administrator to grant consent)."},
	65004:   {Permanent, "Consent to Postdesk's permissions was declined: sign in again and accept them."},
	53003:   {Permanent, "Access was blocked by a Conditional Access policy: ask your administrator to allow Postdesk, then sign in again."},
	7000222: {ProviderFault, "The client secret expired: update the client secret in the provider settings."},
	7000215: {ProviderFault, "The client secret is wrong: update the client secret in the provider settings."},
	7000218: {ProviderFault, "No client secret was sent: set the client secret in the provider settings."},
	700016:  {ProviderFault, "The application (client ID) is not registered in this directory: check the client ID and tenant in the provider settings."},
	90033:   {Temporary, "Microsoft's sign-in service is temporarily unavailable; retrying."},
}

// secretFaultCodes are the failure codes that mean the client secret
// itself: expired, wrong, missing, or the client's credentials refused.
var secretFaultCodes = map[string]bool{
	"AADSTS7000222": true, "AADSTS7000215": true, "AADSTS7000218": true, "invalid_client": true,
}

// ClientSecretFault reports whether f is the provider refusing the
// client secret: fixed by updating the secret, not by signing in again.
func (f Failure) ClientSecretFault() bool { return f.Kind == ProviderFault && secretFaultCodes[f.Code] }

var aadstsRE = regexp.MustCompile(`AADSTS(\d+)`)

// Classify sorts a token request error. A nil error is the zero Failure.
func Classify(err error) Failure {
	if err == nil {
		return Failure{}
	}
	var pe *ProviderError
	if errors.As(err, &pe) {
		return pe.Failure
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return classifyRetrieve(re)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return Failure{Kind: Temporary, Code: "timeout", Reason: "The provider did not answer in time; retrying."}
	}
	var ne net.Error
	var ue *url.Error
	if errors.As(err, &ne) || errors.As(err, &ue) {
		return Failure{Kind: Temporary, Code: "network", Reason: "The provider could not be reached; retrying."}
	}
	// Anything else (a malformed answer, a proxy's page) is the provider's
	// or the network's trouble, not a refusal.
	return Failure{Kind: Temporary, Code: "bad_response", Reason: "The provider's answer could not be understood; retrying."}
}

func classifyRetrieve(re *oauth2.RetrieveError) Failure {
	status := 0
	if re.Response != nil {
		status = re.Response.StatusCode
	}
	code := safeCode(re.ErrorCode)
	f := func(kind FailureKind, c, reason string) Failure {
		return Failure{Kind: kind, Code: c, Reason: reason, Status: status}
	}
	if code == "temporarily_unavailable" || status >= 500 || status == 429 {
		c := code
		if c == "" || c == "server_error" {
			c = "http_" + strconv.Itoa(status)
		}
		return f(Temporary, c, "The provider is temporarily unavailable; retrying.")
	}
	for _, n := range aadCodes(re) {
		if r, ok := aadReasons[n]; ok {
			return f(r.kind, "AADSTS"+strconv.Itoa(n), r.reason)
		}
	}
	switch code {
	case "invalid_client":
		return f(ProviderFault, code, "The provider refused the application's credentials: update the client ID and secret in the provider settings.")
	case "unauthorized_client":
		return f(ProviderFault, code, "The provider does not allow this application to sign in this way: check the application's registration.")
	case "invalid_scope":
		return f(ProviderFault, code, "The provider refused the requested permissions: check the scopes in the provider settings.")
	case "invalid_grant":
		if strings.Contains(strings.ToLower(re.ErrorDescription), "expired or revoked") {
			// Google: "Token has been expired or revoked."
			return f(Permanent, code, "The authorization was revoked or has expired: sign in again.")
		}
		if n := aadCodes(re); len(n) > 0 {
			return f(Permanent, "AADSTS"+strconv.Itoa(n[0]), "The provider refused the authorization (AADSTS"+strconv.Itoa(n[0])+"): sign in again.")
		}
		return f(Permanent, code, "The provider refused the authorization: sign in again.")
	case "interaction_required", "consent_required", "login_required", "access_denied":
		return f(Permanent, code, "The provider requires a new sign-in: sign in again.")
	case "":
		if status == 401 || status == 403 {
			return f(ProviderFault, "http_"+strconv.Itoa(status), "The provider refused the application's credentials: check the client ID and secret in the provider settings.")
		}
		return f(Temporary, "http_"+strconv.Itoa(status), "The provider answered with an unexpected error; retrying.")
	}
	return f(Permanent, code, fmt.Sprintf("The provider refused the authorization (%s): sign in again.", code))
}

// aadCodes returns Microsoft's AADSTS numbers of an error: error_codes from
// the JSON body, else those named in error_description.
func aadCodes(re *oauth2.RetrieveError) []int {
	var body struct {
		ErrorCodes []int `json:"error_codes"`
	}
	if json.Unmarshal(re.Body, &body) == nil && len(body.ErrorCodes) > 0 {
		return body.ErrorCodes
	}
	var out []int
	for _, m := range aadstsRE.FindAllStringSubmatch(re.ErrorDescription, -1) {
		if n, err := strconv.Atoi(m[1]); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// safeCode keeps an error code printable and short: it comes from the
// provider, and is shown to admins.
func safeCode(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		if r == '_' || r == '-' || r == '.' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9') {
			return r
		}
		return -1
	}, s)
}
