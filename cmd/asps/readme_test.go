package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/asps-project/asps/internal/testdata"
)

// readmeBlocks returns the ```sh blocks of the README section with the
// heading line heading ("## Your first app"), in order.
func readmeBlocks(t *testing.T, heading string) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README has no section %q", heading)
	}
	// The section ends at the next heading outside a code block.
	inCode := false
	for i, l := range strings.SplitAfter(sec, "\n") {
		if strings.HasPrefix(l, "```") {
			inCode = !inCode
		}
		if !inCode && strings.HasPrefix(l, "#") {
			sec = strings.Join(strings.SplitAfter(sec, "\n")[:i], "")
			break
		}
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(sec, -1) {
		blocks = append(blocks, m[1])
	}
	if len(blocks) == 0 {
		t.Fatalf("section %q has no sh blocks", heading)
	}
	return blocks
}

// runReadme runs script with bash in an empty directory holding the
// binary the test built as ./asps, as a user would.
func runReadme(t *testing.T, script string) string {
	t.Helper()
	dir := t.TempDir()
	bin, err := os.ReadFile(buildBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "asps"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TMPDIR="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("took %v", time.Since(start).Round(time.Millisecond))
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // a server left behind
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "myapp", "server.log"))
		t.Fatalf("README commands failed: %v\n%s\nserver log:\n%s", err, out, log)
	}
	return string(out)
}

// TestReadmeQuotesByHand: the README's first quote commands need nothing
// but the binary (no ../shared, which a clone lacks).
func TestReadmeQuotesByHand(t *testing.T) {
	script := readmeBlocks(t, "### Verifying quotes by hand")[0]
	if strings.Contains(script, "../shared") {
		t.Fatal("the first block needs ../shared")
	}
	dir := t.TempDir()
	script = strings.ReplaceAll(script, "/tmp/q", filepath.Join(dir, "q"))
	out := runReadme(t, script)
	if !strings.Contains(out, `"status": "SWHardeningNeeded"`) {
		t.Fatalf("output:\n%s", out)
	}
	// The corpus block, where the corpus is: the Gramine certificate is
	// shown with --allow-debug, as the README explains.
	corpus := readmeBlocks(t, "### Verifying quotes by hand")[1]
	out = runReadme(t, strings.ReplaceAll(corpus, "../shared/testdata", testdata.Dir(t)))
	if !strings.Contains(out, `"accepted": true`) || !strings.Contains(out, "ACCEPTED") || strings.Contains(out, "REJECTED") {
		t.Fatalf("corpus block output:\n%s", out)
	}
}

// TestReadmeYourFirstApp runs the README's "Your first app" commands, as a
// user would, with the binary the test builds as ./asps in an empty
// directory (on a free port instead of 7443), so the section stays true.
func TestReadmeYourFirstApp(t *testing.T) {
	script := strings.Join(readmeBlocks(t, "## Your first app"), "\n")
	out := runReadme(t, strings.ReplaceAll(script, "127.0.0.1:7443", freePort(t)))
	for _, want := range []string{
		"my first secret\n",                                 // the fetch, as your app
		"matched_app        my-app",                         // whoami
		"refused (PermissionDenied): ",                      // the older build
		`isv_svn 1 not allowed (app "my-app" expects >= 2)`, // … with the reason
		"refused (exit 1)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestReadmeTour runs the README's Tour as written, in a fresh home
// directory, with the dev server in the background (the README runs it in
// another shell) on a free port.
func TestReadmeTour(t *testing.T) {
	script := readmeBlocks(t, "## Tour")[0]
	home := t.TempDir()
	var lines []string
	for _, l := range strings.Split(script, "\n") {
		switch {
		case strings.HasPrefix(l, "go build "):
			continue // runReadme provides ./asps
		case strings.HasPrefix(l, "./asps dev "):
			l = "./asps dev --listen 127.0.0.1:0 >dev.out 2>&1 &\nuntil grep -q '^Edit ' dev.out 2>/dev/null; do sleep 0.1; done"
		}
		lines = append(lines, strings.ReplaceAll(l, "/tmp/demo-key", home+"/demo-key"))
	}
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", "")
	out := runReadme(t, strings.Join(lines, "\n"))
	for _, want := range []string{
		"Secret received: 42-cd-4b-", // demo and fetch
		"matched_app        demo-enclave",
		"DB_PASSWORD has 28 characters",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("Tour output lacks %q:\n%s", want, out)
		}
	}
}
