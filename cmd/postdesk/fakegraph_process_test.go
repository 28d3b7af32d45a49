package main

import (
	"bufio"
	"context"
	"errors"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/postdesk/postdesk/internal/msgraph"
)

// TestFakeIdPServesGraph runs `postdesk fakeidp` as a process and uses its
// stand-in Graph (URL from the banner) with tokens from its own sign-in:
// one account sends through sendMail, the other fetches by delta and $value.
func TestFakeIdPServesGraph(t *testing.T) {
	t.Parallel()
	bin := buildPostdesk(t)
	const agent, customer, redirect = "agent@example.com", "customer@example.net", "http://localhost:8080/oauth/callback"
	cmd := exec.Command(bin, "fakeidp", "--addr", "127.0.0.1:0", "--account", agent, "--account", customer,
		"--app", "postdesk-graph::"+redirect)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if line := sc.Text(); strings.Contains(line, "fakeidp also serves") && strings.Contains(line, "name=graph") {
				_, u, _ := strings.Cut(line, " url=")
				urls <- strings.Fields(u)[0]
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
	})
	var graphURL string
	select {
	case graphURL = <-urls:
	case err := <-exited:
		t.Fatalf("fakeidp exited: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no graph URL in the fakeidp banner")
	}
	idpURL := strings.TrimSuffix(graphURL, "/graph/v1.0")
	if idpURL == graphURL || !strings.HasPrefix(idpURL, "http://127.0.0.1:") {
		t.Fatalf("graph URL %q", graphURL)
	}

	client := func(account string) *msgraph.Client {
		tok := signInOverHTTP(t, idpURL, "postdesk-graph", redirect, account,
			"openid", "offline_access", "https://graph.microsoft.com/Mail.ReadWrite", "https://graph.microsoft.com/Mail.Send")
		return &msgraph.Client{BaseURL: graphURL, User: "me",
			Token: func(context.Context, bool) (string, error) { return tok.AccessToken, nil }}
	}
	ctx := context.Background()
	raw := "From: " + customer + "\r\nTo: " + agent + "\r\nSubject: Help\r\nMessage-ID: <q1@example.net>\r\n" +
		"Auto-Submitted: no\r\n\r\nMy printer is on fire.\r\n"
	if err := client(customer).SendMIME(ctx, []byte(raw)); err != nil {
		t.Fatalf("send through the stand-in: %v", err)
	}
	c := client(agent)
	page, err := c.Delta(ctx, "inbox", "", 10)
	if err != nil || len(page.Items) != 1 || page.DeltaLink == "" || !strings.HasPrefix(page.DeltaLink, graphURL) {
		t.Fatalf("delta: %+v %v", page, err)
	}
	rc, err := c.MIME(ctx, page.Items[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !strings.Contains(string(got), "Message-ID: <q1@example.net>") || strings.Contains(string(got), "Auto-Submitted") {
		t.Fatalf("fetched:\n%s", got)
	}
	// A token from elsewhere is refused.
	bad := &msgraph.Client{BaseURL: graphURL, Token: func(context.Context, bool) (string, error) { return "EwBforged", nil }}
	var e *msgraph.Error
	if _, err := bad.FolderID(ctx, "inbox"); !errors.As(err, &e) || e.Kind != msgraph.KindAuth {
		t.Fatalf("forged token: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("fakeidp after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("fakeidp did not stop on SIGTERM")
	}
}

// signInOverHTTP runs the authorization code flow with PKCE against a
// fakeidp process, picking account on its sign-in page as a browser would.
func signInOverHTTP(t *testing.T, idpURL, clientID, redirect, account string, scopes ...string) *oauth2.Token {
	t.Helper()
	conf := &oauth2.Config{ClientID: clientID, RedirectURL: redirect, Scopes: scopes, Endpoint: oauth2.Endpoint{
		AuthURL: idpURL + "/organizations/oauth2/v2.0/authorize", TokenURL: idpURL + "/organizations/oauth2/v2.0/token",
		AuthStyle: oauth2.AuthStyleInParams}}
	verifier := oauth2.GenerateVerifier()
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	form := url.Values{"account": {account}}
	for _, m := range hiddenInputRE.FindAllStringSubmatch(string(page), -1) {
		form.Add(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	resp, err = hc.PostForm(conf.Endpoint.AuthURL, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("sign-in of %s: %d, Location %q", account, resp.StatusCode, resp.Header.Get("Location"))
	}
	tok, err := conf.Exchange(context.Background(), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange for %s: %v", account, err)
	}
	return tok
}
