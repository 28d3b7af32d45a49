// Package browsertest runs a real headless Chromium for tests of the web
// pages, through chromedp.
//
// Each New starts one browser with a throwaway profile and stops it when the
// test ends. Without Chromium installed the test is skipped, except under CI
// (the CI variable is set), where a missing browser is a failure: a page test
// must not pass silently by not running.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ExecPath is the browser Debian's chromium package installs.
const ExecPath = "/usr/bin/chromium"

// EnvScreenshots names a folder where Screenshot saves PNGs for people to look at.
const EnvScreenshots = "POSTDESK_SCREENSHOTS"

// Width and Height are the window size of a new browser.
const (
	Width  = 1280
	Height = 900
)

// New starts a headless Chromium and returns a context for chromedp actions
// in its first tab. The browser stops at the test's cleanup.
func New(t testing.TB) context.Context {
	t.Helper()
	path := ExecPath
	if _, err := os.Stat(path); err != nil {
		if p, lerr := exec.LookPath("chromium"); lerr == nil {
			path = p
		} else {
			if ciSet() {
				t.Fatalf("chromium is not installed at %s (CI is set, so this is a failure)", ExecPath)
			}
			t.Skipf("chromium is not installed at %s: skipping browser test", ExecPath)
		}
	}
	dir := t.TempDir()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.UserDataDir(dir),
		chromedp.WindowSize(Width, Height),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	// A guard against a hung page, not a speed limit: a long lifecycle test
	// (sync, pause, resume) took over 2 minutes at load 25 with -race.
	ctx, cancelTimeout := context.WithTimeout(ctx, 5*time.Minute)
	// Start the browser now, so a broken installation fails here, clearly.
	if err := chromedp.Do(ctx); err != nil {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
	})
	return ctx
}

// Screenshot saves a full-page PNG of the current page as name.png in the
// folder named by POSTDESK_SCREENSHOTS, and does nothing when it is unset.
// It returns the file written, or "".
func Screenshot(t testing.TB, ctx context.Context, name string) string {
	t.Helper()
	dir := os.Getenv(EnvScreenshots)
	if dir == "" {
		return ""
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	return save(t, dir, name, png)
}

// ScreenshotAt resizes the viewport to width x height (mobile when width is
// under 600 pixels), saves a screenshot as Screenshot does, and restores the
// window size.
func ScreenshotAt(t testing.TB, ctx context.Context, name string, width, height int64) string {
	t.Helper()
	if os.Getenv(EnvScreenshots) == "" {
		return ""
	}
	var file string
	atViewport(t, ctx, width, height, func() { file = Screenshot(t, ctx, name) })
	return file
}

// atViewport runs f with the viewport at width x height (mobile when width
// is under 600 pixels), then restores the window size.
func atViewport(t testing.TB, ctx context.Context, width, height int64, f func()) {
	t.Helper()
	var opts []chromedp.EmulateViewportOption
	if width < 600 {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulatePortrait)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, height, opts...), chromedp.Sleep(100*time.Millisecond)); err != nil {
		t.Fatalf("resize viewport to %dx%d: %v", width, height, err)
	}
	defer func() {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(Width, Height)); err != nil {
			t.Errorf("restore viewport: %v", err)
		}
	}()
	f()
}

func save(t testing.TB, dir, name string, png []byte) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("create screenshot folder: %v", err)
	}
	name = strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == ' ' {
			return '-'
		}
		return r
	}, name)
	file := filepath.Join(dir, name+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Fatalf("save screenshot: %v", err)
	}
	t.Logf("screenshot: %s", file)
	return file
}
