package fakeidp

import (
	"context"
	"io"
	"net/http"
	"slices"
	"testing"

	"golang.org/x/oauth2"
)

// One refresh token serves two resources: the token of a sign-in with
// Outlook and Graph scopes is for the first resource; a refresh asking for
// Graph scopes gets a Graph token, whose audience and scopes resource
// servers (the stand-in Graph) and introspection see.
func TestAccessTokensHaveTheAudienceOfTheirScopes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(o *Options) { o.RefreshTokenReuse = ReuseAllowed })
	f.conf.Scopes = append(slices.Clone(testScopes), "https://graph.microsoft.com/Mail.ReadWrite", "https://graph.microsoft.com/Mail.Send")
	tok := f.tokens(t, agent)
	info, ok := f.idp.AccessTokenInfo(tok.AccessToken)
	if !ok || info.Audience != "https://outlook.office.com" || info.Account != agent || info.ClientID != testClientID ||
		!slices.Equal(info.Scopes, []string{"IMAP.AccessAsUser.All", "SMTP.Send"}) {
		t.Fatalf("first token: %+v %v", info, ok)
	}
	graph := oauth2.SetAuthURLParam("scope", "https://graph.microsoft.com/Mail.ReadWrite https://graph.microsoft.com/Mail.Send offline_access")
	gt, err := f.conf.Exchange(context.Background(), "", oauth2.SetAuthURLParam("grant_type", "refresh_token"),
		oauth2.SetAuthURLParam("refresh_token", tok.RefreshToken), graph)
	if err != nil {
		t.Fatal(err)
	}
	info, ok = f.idp.AccessTokenInfo(gt.AccessToken)
	if !ok || info.Audience != "https://graph.microsoft.com" || !slices.Equal(info.Scopes, []string{"Mail.ReadWrite", "Mail.Send"}) {
		t.Fatalf("graph token: %+v %v", info, ok)
	}
	if in := f.introspect(t, gt.AccessToken); in["aud"] != "https://graph.microsoft.com" {
		t.Fatalf("introspected graph token: %v", in)
	}
	// A refresh may narrow the scopes.
	dt, err := f.conf.Exchange(context.Background(), "", oauth2.SetAuthURLParam("grant_type", "refresh_token"),
		oauth2.SetAuthURLParam("refresh_token", gt.RefreshToken), oauth2.SetAuthURLParam("scope", "https://outlook.office.com/IMAP.AccessAsUser.All"))
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := f.idp.AccessTokenInfo(dt.AccessToken); !slices.Equal(info.Scopes, []string{"IMAP.AccessAsUser.All"}) {
		t.Fatalf("narrowed token: %+v", info)
	}
	if _, ok := f.idp.AccessTokenInfo("EwBunknown"); ok {
		t.Fatal("an unknown token is valid")
	}
	f.idp.Revoke(agent)
	if _, ok := f.idp.AccessTokenInfo(gt.AccessToken); ok {
		t.Fatal("a revoked token is valid")
	}
	// .default means every scope of the resource the grant has.
	def, _ := f.idp.IssueTokens(testClientID, support, "https://graph.microsoft.com/.default", "https://graph.microsoft.com/Mail.Read")
	if info, _ := f.idp.AccessTokenInfo(def.AccessToken); info.Audience != "https://graph.microsoft.com" || !slices.Equal(info.Scopes, []string{"Mail.Read"}) {
		t.Fatalf(".default: %+v", info)
	}
}

func TestMountServesBesideTheIdP(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.idp.Mount("/graph/", http.StripPrefix("/graph", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "graph saw "+r.URL.Path)
	})), "graph", "/graph/v1.0")
	resp, body := f.get(t, f.srv.URL+"/graph/v1.0/me")
	if resp.StatusCode != 200 || body != "graph saw /v1.0/me" {
		t.Fatalf("mounted: %d %q", resp.StatusCode, body)
	}
	// The IdP's own paths still work.
	if resp, _ := f.get(t, f.srv.URL+"/organizations/v2.0/.well-known/openid-configuration"); resp.StatusCode != 200 {
		t.Fatalf("discovery: %d", resp.StatusCode)
	}
}
