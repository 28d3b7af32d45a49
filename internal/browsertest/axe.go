package browsertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// AxeVersion is the axe-core release the accessibility checks run. It is
// pinned in scripts/install-axe too; change both together.
const AxeVersion = "4.14.1"

// EnvAxe names the path of axe.min.js, overriding the default cache location
// (scripts/test sets it from scripts/install-axe).
const EnvAxe = "POSTDESK_AXE_JS"

// axeTags are the rule sets checked: WCAG 2.0 and 2.1, levels A and AA.
const axeTags = `["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]`

// AxePath is where axe.min.js is looked for: $POSTDESK_AXE_JS, or the
// folder scripts/install-axe installs into under the user's cache folder.
func AxePath() string {
	if p := os.Getenv(EnvAxe); p != "" {
		return p
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "postdesk", "axe-core-"+AxeVersion, "node_modules", "axe-core", "axe.min.js")
}

// axeViolation is one failed rule as axe.run reports it, trimmed to what a
// failure message needs.
type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target  []any  `json:"target"`
		HTML    string `json:"html"`
		Impact  string `json:"impact"`
		Summary string `json:"failureSummary"`
	} `json:"nodes"`
}

// axeReport is what the page returns after axe.run.
type axeReport struct {
	Version    string         `json:"version"`
	Passes     int            `json:"passes"`
	Violations []axeViolation `json:"violations"`
}

// Axe checks the page open in ctx with axe-core against WCAG 2.1 A and AA
// and fails the test on every serious or critical violation, naming the
// rule, its impact, the element (a CSS selector and its HTML) and what to
// fix. Minor and moderate findings are logged. page names the page in the
// messages. Email content in sandboxed frames is not checked (it is the
// sender's), the frame element itself is.
//
// Without axe-core installed (scripts/install-axe) the check is a failure
// under CI; elsewhere the test still runs and is reported as skipped at its
// end, with a message on stderr, so a missing checker is never a pass.
func Axe(t testing.TB, ctx context.Context, page string) {
	t.Helper()
	path := AxePath()
	src, err := readAxe()
	if err != nil {
		msg := fmt.Sprintf("axe-core %s is not installed (%v): run scripts/install-axe, or set %s to axe.min.js", AxeVersion, err, EnvAxe)
		if ciSet() {
			t.Fatalf("%s (CI is set, so this is a failure)", msg)
		}
		fmt.Fprintf(os.Stderr, "\n!!! %s: ACCESSIBILITY NOT CHECKED on %q: %s\n\n", t.Name(), page, msg)
		t.Cleanup(func() { t.Skipf("ACCESSIBILITY NOT CHECKED: %s", msg) })
		return
	}
	loaded, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`typeof window.axe !== 'undefined'`))
	if err != nil {
		t.Fatalf("axe on %s: %v", page, err)
	}
	if !loaded {
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[any](string(src)+"\n;undefined")); err != nil {
			t.Fatalf("axe on %s: load %s: %v", page, path, err)
		}
	}
	script := `(async () => {
  const r = await window.axe.run(document, {
    runOnly: {type: 'tag', values: ` + axeTags + `},
    resultTypes: ['violations'],
    iframes: false,
  });
  return JSON.stringify({
    version: window.axe.version,
    passes: r.passes.length,
    violations: r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.map(n => ({target: n.target, html: n.html, impact: n.impact, failureSummary: n.failureSummary}))})),
  });
})()`
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](script, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("axe on %s: %v", page, err)
	}
	var rep axeReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("axe on %s: read the report: %v", page, err)
	}
	if rep.Version != AxeVersion {
		t.Fatalf("axe on %s: axe-core %s ran, want %s (%s): run scripts/install-axe", page, rep.Version, AxeVersion, path)
	}
	serious := 0
	for _, v := range rep.Violations {
		bad := v.Impact == "serious" || v.Impact == "critical"
		for _, n := range v.Nodes {
			impact := n.Impact
			if impact == "" {
				impact = v.Impact
			}
			line := fmt.Sprintf("axe on %s: %s (%s): %s\n    at %s\n    %s\n    %s", page, v.ID, impact, v.Help,
				targetText(n.Target), truncate(n.HTML, 200), strings.ReplaceAll(strings.TrimSpace(n.Summary), "\n", "\n    "))
			if bad {
				serious++
				t.Error(line)
			} else {
				t.Log(line)
			}
		}
	}
	t.Logf("axe on %s: %d rules passed, %d violations (%d serious or critical elements)", page, rep.Passes, len(rep.Violations), serious)
}

// AxeAt runs Axe with the viewport at width x height (a phone when width is
// under 600 pixels), then restores the window size.
func AxeAt(t testing.TB, ctx context.Context, page string, width, height int64) {
	t.Helper()
	atViewport(t, ctx, width, height, func() {
		t.Helper()
		Axe(t, ctx, page)
	})
}

// readAxe reads axe.min.js from AxePath.
func readAxe() ([]byte, error) {
	path := AxePath()
	if path == "" {
		return nil, errors.New("no cache folder to look in")
	}
	return os.ReadFile(path)
}

// ciSet reports whether the tests run under CI, where nothing may be skipped.
func ciSet() bool { return os.Getenv("CI") != "" }

// targetText writes axe's target (selectors, nested for frames and shadow
// roots) as one string.
func targetText(target []any) string {
	parts := make([]string, 0, len(target))
	for _, s := range target {
		parts = append(parts, fmt.Sprint(s))
	}
	return strings.Join(parts, " >> ")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
