package fakeidp

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// aadError is an error of the Microsoft identity platform: an OAuth error
// code (RFC 6749 5.2) plus an AADSTS number and its description.
type aadError struct {
	status int    // HTTP status at the token endpoint
	err    string // OAuth error code: invalid_grant, invalid_client, ...
	code   int    // AADSTS number
	text   string // description without the "AADSTSnnn: " prefix
}

func newAAD(status int, oauthErr string, code int, format string, args ...any) *aadError {
	return &aadError{status: status, err: oauthErr, code: code, text: fmt.Sprintf(format, args...)}
}

// msTimestamp is the format of Microsoft's "timestamp" field and the
// "Timestamp:" line of error descriptions.
const msTimestamp = "2006-01-02 15:04:05Z"

// msDate is how AADSTS descriptions print issue dates.
const msDate = "2006-01-02T15:04:05.0000000Z07:00"

// timeSpan formats d like .NET's TimeSpan ("90.00:00:00"), as AADSTS700082
// and AADSTS70043 print lifetimes.
func timeSpan(d time.Duration) string {
	d = d.Round(time.Second)
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	h := d / time.Hour
	d -= h * time.Hour
	m := d / time.Minute
	s := (d - m*time.Minute) / time.Second
	return fmt.Sprintf("%d.%02d:%02d:%02d", days, h, m, s)
}

// tokenErrorBody is Microsoft's error JSON at the token endpoint.
type tokenErrorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	Timestamp        string `json:"timestamp"`
	TraceID          string `json:"trace_id"`
	CorrelationID    string `json:"correlation_id"`
	ErrorURI         string `json:"error_uri"`
}

// body renders e with fresh trace and correlation ids at now.
func (e *aadError) body(now time.Time, correlationID string) tokenErrorBody {
	if correlationID == "" {
		correlationID = newUUID()
	}
	ts := now.UTC().Format(msTimestamp)
	trace := newUUID()
	return tokenErrorBody{
		Error: e.err,
		ErrorDescription: fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s",
			e.code, e.text, trace, correlationID, ts),
		ErrorCodes:    []int{e.code},
		Timestamp:     ts,
		TraceID:       trace,
		CorrelationID: correlationID,
		ErrorURI:      fmt.Sprintf("https://login.microsoftonline.com/error?code=%d", e.code),
	}
}

// description is the error_description put in a redirect: Microsoft
// sends the same text there, with the trace lines.
func (e *aadError) description(now time.Time) string {
	return e.body(now, "").ErrorDescription
}

func (idp *IdP) writeTokenError(w http.ResponseWriter, r *http.Request, e *aadError) {
	body := e.body(idp.clock.Now(), r.Header.Get("client-request-id"))
	if e.status == http.StatusUnauthorized {
		// RFC 6749 5.2: 401 invalid_client carries a challenge.
		w.Header().Set("WWW-Authenticate", `Basic realm="fakeidp"`)
	}
	writeJSON(w, e.status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// Errors of the token endpoint, sign-in and authorize requests.

func errMissingParam(name string) *aadError {
	return newAAD(400, "invalid_request", 900144, "The request body must contain the following parameter: '%s'.", name)
}

func errUnknownApp(clientID, tenant string) *aadError {
	return newAAD(400, "unauthorized_client", 700016, "Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", clientID, tenant)
}

func errRedirectMismatch(redirectURI, clientID string) *aadError {
	return newAAD(400, "invalid_request", 50011, "The redirect URI '%s' specified in the request does not match the redirect URIs configured for the application '%s'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this.", redirectURI, clientID)
}

func errSecretMissing() *aadError {
	return newAAD(401, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
}

func errSecretInvalid(clientID string) *aadError {
	return newAAD(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", clientID)
}

func errSecretExpired(clientID string) *aadError {
	return newAAD(401, "invalid_client", 7000222, "The provided client secret keys for app '%s' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.", clientID)
}

func errUnsupportedGrant(grantType string) *aadError {
	return newAAD(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type '%s'.", grantType)
}

func errCodeInvalid() *aadError {
	return newAAD(400, "invalid_grant", 70000, "The provided value for the 'code' parameter is not valid.")
}

func errCodeRedeemed() *aadError {
	return newAAD(400, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.")
}

func errCodeReplyMismatch(got, want string) *aadError {
	return newAAD(400, "invalid_grant", 500112, "The reply address '%s' does not match the reply address '%s' provided when requesting Authorization code.", got, want)
}

func errVerifier() *aadError {
	return newAAD(400, "invalid_grant", 501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request.")
}

func errPKCERequired(detail string) *aadError {
	return newAAD(400, "invalid_request", 9002325, "Proof Key for Code Exchange is required for cross-origin authorization code redemption. %s", detail)
}

func errRefreshMalformed() *aadError {
	return newAAD(400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
}

func errGrantInvalid() *aadError {
	return newAAD(400, "invalid_grant", 70000, "Provided grant is invalid or malformed.")
}

// errGrantRevoked answers a refresh token of a grant revoked because one
// of its spent refresh tokens was presented again.
func errGrantRevoked() *aadError {
	return newAAD(400, "invalid_grant", 50173, "The provided grant has expired due to it being revoked, a fresh auth token is needed. A refresh token that had already been redeemed was presented again, so every token of this grant was revoked.")
}

func errTemporarilyUnavailable() *aadError {
	return newAAD(503, "temporarily_unavailable", 90033, "A transient error has occurred. Please try again.")
}

func errDeclined() *aadError {
	return newAAD(400, "access_denied", 65004, "User declined to consent to access the app.")
}

func errLoginRequired() *aadError {
	return newAAD(400, "login_required", 50058, "A silent sign-in request was sent but no user is signed in.")
}

func errResponseType(rt string) *aadError {
	return newAAD(400, "unsupported_response_type", 700054, "response_type '%s' is not enabled for the application.", rt)
}

// refreshError builds the error for an AADSTS code at the token endpoint,
// for a refresh of rt by app.
func (idp *IdP) refreshError(code int, rt *refreshToken, app *App, acct *account, now time.Time) *aadError {
	resource := resourceOf(rt.grant.scopes)
	switch code {
	case 700082:
		return newAAD(400, "invalid_grant", code, "The refresh token has expired due to inactivity. The token was issued on %s and was inactive for %s.",
			rt.issued.UTC().Format(msDate), timeSpan(idp.opts.RefreshTokenInactivity))
	case 70008:
		return newAAD(400, "invalid_grant", code, "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.")
	case 50173:
		validFrom := acct.validFrom
		if validFrom.IsZero() {
			validFrom = now
		}
		return newAAD(400, "invalid_grant", code, "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '%s' and the TokensValidFrom date (before which tokens are not valid) for this user is '%s'.",
			rt.grant.authTime.UTC().Format(msDate), validFrom.UTC().Format(msDate))
	case 50132:
		return newAAD(400, "invalid_grant", code, "The session has been revoked due to password changes or the password has expired. A new sign-in is required.")
	case 50133:
		return newAAD(400, "invalid_grant", code, "Session is invalid due to expiration or recent password change.")
	case 50055:
		return newAAD(400, "invalid_grant", code, "The password is expired.")
	case 50057:
		return newAAD(400, "invalid_grant", code, "The user account is disabled.")
	case 70043:
		maxAge := idp.opts.MaxSessionAge
		if maxAge == 0 {
			maxAge = 24 * time.Hour
		}
		return newAAD(400, "invalid_grant", code, "The refresh token has expired or is invalid due to sign-in frequency checks by conditional access. The token was issued on %s and the maximum allowed lifetime for this request is %s.",
			rt.grant.authTime.UTC().Format(msDate), timeSpan(maxAge))
	case 50076:
		return newAAD(400, "invalid_grant", code, "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '%s'.", resource)
	case 50079:
		return newAAD(400, "invalid_grant", code, "Due to a configuration change made by your administrator, or because you moved to a new location, you must enroll in multi-factor authentication to access '%s'.", resource)
	case 65001:
		return newAAD(400, "invalid_grant", code, "The user or administrator has not consented to use the application with ID '%s' named '%s'. Send an interactive authorization request for this user and resource.", app.ClientID, appName(app))
	case 65004:
		return newAAD(400, "invalid_grant", code, "User declined to consent to access the app.")
	case 53003:
		return newAAD(400, "invalid_grant", code, "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.")
	}
	return newAAD(400, "invalid_grant", code, "Injected failure (no known description for this code).")
}

// resourceOf returns the resource of the first resource scope
// ("https://outlook.office.com" of ".../IMAP.AccessAsUser.All").
func resourceOf(scopes []string) string {
	for _, s := range scopes {
		if i := strings.LastIndex(s, "/"); strings.Contains(s, "://") && i > len("https://") {
			return s[:i]
		}
	}
	return "00000003-0000-0000-c000-000000000000" // Microsoft Graph
}

func appName(a *App) string {
	if a.Name != "" {
		return a.Name
	}
	return a.ClientID
}
