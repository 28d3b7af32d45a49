package config

import (
	"flag"
	"io"
	"strings"
	"testing"
)

func load(t *testing.T, args []string, env map[string]string) (*Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	resolve := Flags(fs, func(k string) string { return env[k] })
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return resolve()
}

func TestPrecedence(t *testing.T) {
	c, err := load(t, nil, nil)
	if err != nil || c.DataDir != "./data" || c.Listen != "127.0.0.1:8080" {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	c, err = load(t, nil, map[string]string{"POSTDESK_DATA": "/env", "POSTDESK_SUPPORT_ADDRESSES": "A@x.test, b@y.test"})
	if err != nil || c.DataDir != "/env" || len(c.SupportAddresses) != 2 || c.SupportAddresses[0] != "a@x.test" {
		t.Fatalf("env: %+v %v", c, err)
	}
	c, err = load(t, []string{"--data", "/flag"}, map[string]string{"POSTDESK_DATA": "/env"})
	if err != nil || c.DataDir != "/flag" {
		t.Fatalf("flag over env: %+v %v", c, err)
	}
}

func TestAssignOnReply(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want bool
	}{{nil, true}, {map[string]string{"POSTDESK_ASSIGN_ON_REPLY": "false"}, false}, {map[string]string{"POSTDESK_ASSIGN_ON_REPLY": "1"}, true}} {
		c, err := load(t, nil, tc.env)
		if err != nil || c.AssignOnReply != tc.want {
			t.Errorf("env %v: assign on reply = %v, %v; want %v", tc.env, c != nil && c.AssignOnReply, err, tc.want)
		}
	}
	if _, err := load(t, []string{"--assign-on-reply", "sometimes"}, nil); err == nil || !strings.Contains(err.Error(), "--assign-on-reply") {
		t.Errorf("a bad value: %v", err)
	}
}

func TestValidationNamesEveryBadSettingAndHidesSecrets(t *testing.T) {
	_, err := load(t, []string{"--listen", "nope", "--log-level", "loud"},
		map[string]string{"POSTDESK_DATABASE_URL": "mysql://u:hunter2@h/db", "POSTDESK_BASE_URL": "ftp://x"})
	if err == nil {
		t.Fatal("want an error")
	}
	msg := err.Error()
	for _, want := range []string{"--listen", "--log-level", "POSTDESK_DATABASE_URL", "POSTDESK_BASE_URL"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not name %s:\n%s", want, msg)
		}
	}
	for _, want := range []string{"must be debug, info, warn or error"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not say %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "hunter2") {
		t.Errorf("error shows a secret:\n%s", msg)
	}
}

// A port past 65535 is named at start, not when the listener fails.
func TestListenPortIsChecked(t *testing.T) {
	for _, bad := range []string{"127.0.0.1:99999", "127.0.0.1:-1", "127.0.0.1:http-alt"} {
		_, err := load(t, []string{"--listen", bad}, nil)
		if err == nil || !strings.Contains(err.Error(), "--listen") || !strings.Contains(err.Error(), "from 0 to 65535") {
			t.Errorf("--listen %s: %v", bad, err)
		}
	}
	if _, err := load(t, []string{"--metrics-addr", "127.0.0.1:70000"}, nil); err == nil || !strings.Contains(err.Error(), "--metrics-addr") || !strings.Contains(err.Error(), "from 0 to 65535") {
		t.Errorf("--metrics-addr 127.0.0.1:70000: %v", err)
	}
	if _, err := load(t, []string{"--webhook-allow-private", "yes please"}, nil); err == nil || !strings.Contains(err.Error(), `"yes please" must be true or false`) {
		t.Errorf("--webhook-allow-private: %v", err)
	}
	for _, good := range []string{"127.0.0.1:0", "[::1]:8080", ":443"} {
		if _, err := load(t, []string{"--listen", good}, nil); err != nil {
			t.Errorf("--listen %s: %v", good, err)
		}
	}
}

func TestGenericProviderNeedsItsEndpoints(t *testing.T) {
	if _, err := load(t, []string{"--oauth-client-id", "abc"}, nil); err == nil || !strings.Contains(err.Error(), "--oauth-token-url") {
		t.Fatalf("err = %v", err)
	}
	c, err := load(t, []string{"--oauth-client-id", "abc", "--oauth-auth-url", "https://idp.example/auth",
		"--oauth-token-url", "https://idp.example/token", "--oauth-imap", "imap.example:993", "--oauth-name", "fastmail"}, nil)
	if err != nil || c.Generic.IMAPPort != 993 || c.Generic.Name != "fastmail" || len(c.Generic.Scopes) != 3 {
		t.Fatalf("generic = %+v %v", c.Generic, err)
	}
	if _, err := load(t, []string{"--oauth-name", "microsoft"}, nil); err == nil {
		t.Fatal("a generic provider named microsoft was accepted")
	}
}

// ProviderEnvs names variables that exist: each is an option's variable.
func TestProviderEnvs(t *testing.T) {
	for _, tc := range []struct{ provider, id, secret string }{
		{"microsoft", "POSTDESK_MICROSOFT_CLIENT_ID", "POSTDESK_MICROSOFT_CLIENT_SECRET"},
		{"google-testing", "POSTDESK_GOOGLE_CLIENT_ID", "POSTDESK_GOOGLE_CLIENT_SECRET"},
		{"acme-sso", "POSTDESK_OAUTH_CLIENT_ID", "POSTDESK_OAUTH_CLIENT_SECRET"},
	} {
		id, secret := ProviderEnvs(tc.provider)
		if id != tc.id || secret != tc.secret {
			t.Errorf("ProviderEnvs(%q) = %s, %s; want %s, %s", tc.provider, id, secret, tc.id, tc.secret)
		}
		known := map[string]bool{}
		for _, o := range options() {
			known[Env(o.name)] = true
		}
		if !known[id] || !known[secret] {
			t.Errorf("ProviderEnvs(%q) names a variable that is no option: %s, %s", tc.provider, id, secret)
		}
	}
}

// Without --base-url, links and redirects use the listen address (it was
// always http://localhost:8080, whatever the port); an address of every
// interface is reached as localhost.
func TestBaseURLFromListen(t *testing.T) {
	for listen, want := range map[string]string{
		"127.0.0.1:18083": "http://127.0.0.1:18083", ":9000": "http://localhost:9000", "0.0.0.0:8080": "http://localhost:8080",
		"[::]:8080": "http://localhost:8080", "[::1]:8443": "http://[::1]:8443", "desk.internal:80": "http://desk.internal:80",
	} {
		c, err := load(t, []string{"--listen", listen}, nil)
		if err != nil || c.BaseURL.String() != want || !c.BaseURLFromListen {
			t.Errorf("--listen %s: base URL %v (from listen %v), %v; want %s", listen, c.BaseURL, c.BaseURLFromListen, err, want)
		}
	}
	c, err := load(t, []string{"--listen", "127.0.0.1:18083", "--base-url", "https://help.example.com/"}, nil)
	if err != nil || c.BaseURL.String() != "https://help.example.com" || c.BaseURLFromListen {
		t.Errorf("--base-url given: %v (from listen %v), %v", c.BaseURL, c.BaseURLFromListen, err)
	}
}
