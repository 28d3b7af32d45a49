package fakeidp

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// signingKey is the RSA key that signs id_tokens, with the self-signed
// certificate Microsoft publishes in x5c; its kid is the certificate's
// SHA-1 thumbprint (x5t), as Microsoft's.
type signingKey struct {
	key  *rsa.PrivateKey
	cert []byte
	kid  string
}

func newSigningKey(key *rsa.PrivateKey, now time.Time) signingKey {
	if key == nil {
		var err error
		key, err = rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic("fakeidp: generate RSA key: " + err.Error()) // crypto/rand never fails
		}
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "accounts.accesscontrol.windows.net"},
		NotBefore:    now.Add(-24 * time.Hour),
		NotAfter:     now.Add(5 * 365 * 24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic("fakeidp: self-sign key certificate: " + err.Error()) // only fails on a bad template
	}
	sum := sha1.Sum(der)
	return signingKey{key: key, cert: der, kid: base64.RawURLEncoding.EncodeToString(sum[:])}
}

// handleDiscovery serves the OpenID Provider Metadata (OpenID Connect
// Discovery 1.0 section 3) in Microsoft's shape. As Microsoft's, the issuer of
// the multi-tenant aliases (common, organizations, consumers) holds the
// literal placeholder "{tenantid}".
func (idp *IdP) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	base := idp.baseURL(r)
	issuerTenant := tenant
	switch tenant {
	case "common", "organizations", "consumers":
		issuerTenant = "{tenantid}"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"token_endpoint":                        base + "/" + tenant + "/oauth2/v2.0/token",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"jwks_uri":                              base + "/" + tenant + "/discovery/v2.0/keys",
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"issuer":                                base + "/" + issuerTenant + "/v2.0",
		"request_uri_parameter_supported":       false,
		"userinfo_endpoint":                     base + "/oidc/userinfo",
		"authorization_endpoint":                base + "/" + tenant + "/oauth2/v2.0/authorize",
		"device_authorization_endpoint":         base + "/" + tenant + "/oauth2/v2.0/devicecode",
		"http_logout_supported":                 true,
		"frontchannel_logout_supported":         true,
		"end_session_endpoint":                  base + "/" + tenant + "/oauth2/v2.0/logout",
		"claims_supported":                      []string{"sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"},
		"kerberos_endpoint":                     base + "/" + tenant + "/kerberos",
		"tenant_region_scope":                   nil,
		"cloud_instance_name":                   "microsoftonline.com",
		"cloud_graph_host_name":                 "graph.windows.net",
		"msgraph_host":                          "graph.microsoft.com",
		"rbac_url":                              "https://pas.windows.net",
		"code_challenge_methods_supported":      []string{"S256"},
		// Not in Microsoft's document: RFC 8414 name of /introspect, which only
		// this stand-in has (Microsoft tokens are validated by the mail servers).
		"introspection_endpoint": base + "/introspect",
	})
}

// handleKeys serves the JWKS (RFC 7517) with the signing key.
func (idp *IdP) handleKeys(w http.ResponseWriter, r *http.Request) {
	pub := idp.keys.key.PublicKey
	writeJSON(w, http.StatusOK, map[string]any{
		"keys": []map[string]any{{
			"kty":    "RSA",
			"use":    "sig",
			"kid":    idp.keys.kid,
			"x5t":    idp.keys.kid,
			"n":      base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			"e":      base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
			"x5c":    []string{base64.StdEncoding.EncodeToString(idp.keys.cert)},
			"issuer": idp.baseURL(r) + "/" + idp.opts.TenantID + "/v2.0",
		}},
	})
}

// PublicKey returns the key that verifies id_tokens, with its kid.
func (idp *IdP) PublicKey() (kid string, key *rsa.PublicKey) {
	return idp.keys.kid, &idp.keys.key.PublicKey
}

// idToken signs the id_token of a grant (OpenID Connect Core 1.0 section 2,
// with Microsoft's v2.0 claims).
func (idp *IdP) idToken(r *http.Request, g *grant, acct *account, now time.Time) (string, error) {
	claims := jwt.MapClaims{
		"ver": "2.0",
		"iss": idp.issuer(r),
		"sub": pairwiseSub(g.clientID, acct.oid),
		"aud": g.clientID,
		"exp": now.Add(idp.opts.AccessTokenLifetime).Unix(),
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"oid": acct.oid,
		"tid": idp.opts.TenantID,
	}
	if g.nonce != "" {
		claims["nonce"] = g.nonce
	}
	if hasScope(g.scopes, "email") {
		claims["email"] = acct.Address
	}
	if hasScope(g.scopes, "profile") {
		claims["name"] = acct.Name
		claims["preferred_username"] = acct.Address
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = idp.keys.kid
	return tok.SignedString(idp.keys.key)
}

// pairwiseSub is the app-specific subject Microsoft issues.
func pairwiseSub(clientID, oid string) string {
	sum := sha256.Sum256([]byte(clientID + "|" + oid))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
