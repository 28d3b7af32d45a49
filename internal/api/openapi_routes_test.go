package api_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestOpenAPIListsEveryRoute holds docs/openapi.yaml and docs/api.md to the
// route table: every method and path api.go serves is described in both.
func TestOpenAPIListsEveryRoute(t *testing.T) {
	src, err := os.ReadFile("api.go")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	guide, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	routes := regexp.MustCompile(`m\.HandleFunc\("([A-Z]+) /api/v1(/[^"]+)"`).FindAllStringSubmatch(string(src), -1)
	if len(routes) < 20 {
		t.Fatalf("found %d routes in api.go: the pattern no longer matches the route table", len(routes))
	}
	// The paths of the spec, each with the methods listed under it.
	methods := map[string][]string{}
	cur := ""
	for line := range strings.SplitSeq(string(spec), "\n") {
		if strings.HasPrefix(line, "  /") && strings.HasSuffix(line, ":") {
			cur = strings.TrimSuffix(strings.TrimSpace(line), ":")
			if _, twice := methods[cur]; twice {
				// YAML keeps one of two equal keys: the other is lost to tools.
				t.Errorf("docs/openapi.yaml describes %s twice", cur)
			}
			methods[cur] = nil
			continue
		}
		if cur != "" && len(line) > 4 && line[:4] == "    " && line[4] != ' ' {
			methods[cur] = append(methods[cur], strings.TrimSuffix(strings.TrimSpace(line), ":"))
		}
		if line != "" && line[0] != ' ' {
			cur = ""
		}
	}
	for _, m := range regexp.MustCompile(`(?m)^\| `+"`"+`([A-Z]+ /[^`+"`"+`]+)`+"`").FindAllStringSubmatch(string(guide), -1) {
		if n := strings.Count(string(guide), "| `"+m[1]+"` |"); n > 1 {
			t.Errorf("docs/api.md lists %s %d times", m[1], n)
		}
	}
	param := regexp.MustCompile(`\{[a-zA-Z_]+\}`)
	for _, r := range routes {
		method, path := r[1], r[2]
		ms, ok := methods[path]
		if !ok {
			t.Errorf("docs/openapi.yaml has no path %s (served as %s)", path, method)
			continue
		}
		if !strings.Contains(strings.Join(ms, " "), strings.ToLower(method)) {
			t.Errorf("docs/openapi.yaml: %s has no %s (has %v)", path, strings.ToLower(method), ms)
		}
		// The guide names paths with {id}-style parameters: compare the shape.
		shape := param.ReplaceAllString(path, "{}")
		found := false
		for _, m := range regexp.MustCompile("`"+method+` (/[^`+"`"+` ]+)`+"`").FindAllStringSubmatch(string(guide), -1) {
			found = found || param.ReplaceAllString(m[1], "{}") == shape
		}
		if !found {
			t.Errorf("docs/api.md's endpoint table lacks %s %s", method, path)
		}
	}
}
