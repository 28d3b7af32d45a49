package main

import (
	"strings"
	"testing"
)

// TestUserVerbs drives "postdesk user" through auth.Service's rules, as
// Admin -> Users and the API do.
func TestUserVerbs(t *testing.T) {
	vars := dialectEnv(t, "sqlite")
	vars["POSTDESK_BASE_URL"] = "https://desk.example.com"
	step := func(stdin string, args ...string) string {
		t.Helper()
		out, _, err := cli(t, vars, stdin, append([]string{"user"}, args...)...)
		if err != nil {
			t.Fatalf("user %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	refused := func(want string, args ...string) {
		t.Helper()
		_, _, err := cli(t, vars, "", append([]string{"user"}, args...)...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("user %s: %v, want it refused with %q", strings.Join(args, " "), err, want)
		}
	}
	step("correct horse battery\n", "add", "--email", "ada@example.com", "--role", "admin")
	out := step("", "add", "--email", "ann@example.com", "--invite")
	if !strings.Contains(out, "invitation link: https://desk.example.com/invite/") || strings.Contains(out, "password:") {
		t.Fatalf("add --invite:\n%s", out)
	}
	out = step("", "list")
	if !strings.Contains(out, "ada@example.com") || !strings.Contains(out, "invited") || !strings.Contains(out, "never") {
		t.Fatalf("list:\n%s", out)
	}
	refused("ada@example.com is the last active admin", "role", "--email", "ada@example.com", "--role", "agent")
	refused("ada@example.com is the last active admin", "disable", "--email", "ada@example.com")
	refused("--role: The role must be admin or agent.", "role", "--email", "ann@example.com", "--role", "owner")
	refused("no user nobody@example.com", "disable", "--email", "nobody@example.com")
	if out := step("", "role", "--email", "ann@example.com", "--role", "admin"); !strings.Contains(out, "ann@example.com is now an admin") {
		t.Fatalf("role:\n%s", out)
	}
	// Ann has no password yet: she is not an active admin, so Ada stays the last.
	refused("last active admin", "disable", "--email", "ada@example.com")
	out = step("", "reset", "--email", "ann@example.com")
	if !strings.Contains(out, "password: ") {
		t.Fatalf("reset:\n%s", out)
	}
	if out := step("", "disable", "--email", "ada@example.com"); !strings.Contains(out, "disabled ada@example.com") {
		t.Fatalf("disable:\n%s", out)
	}
	if out := step("", "list"); !strings.Contains(out, "disabled") {
		t.Fatalf("list after disable:\n%s", out)
	}
	if out := step("", "enable", "--email", "ada@example.com"); !strings.Contains(out, "enabled ada@example.com") {
		t.Fatalf("enable:\n%s", out)
	}
}
