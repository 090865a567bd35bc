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
)

// readmeSection returns the ```sh blocks of the README section headed
// "## title", in order.
func readmeSection(t *testing.T, title string) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## "+title+"\n")
	if !ok {
		t.Fatalf("README has no section %q", title)
	}
	if i := strings.Index(sec, "\n## "); i >= 0 {
		sec = sec[:i]
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(sec, -1) {
		blocks = append(blocks, m[1])
	}
	if len(blocks) == 0 {
		t.Fatalf("section %q has no sh blocks", title)
	}
	return strings.Join(blocks, "\n")
}

// TestReadmeYourFirstApp runs the README's "Your first app" commands, as a
// user would, with the binary the test builds as ./asps in an empty
// directory (on a free port instead of 7443), so the section stays true.
func TestReadmeYourFirstApp(t *testing.T) {
	script := readmeSection(t, "Your first app")
	dir := t.TempDir()
	bin, err := os.ReadFile(buildBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "asps"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	script = strings.ReplaceAll(script, "127.0.0.1:7443", freePort(t))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("walk-through took %v", time.Since(start).Round(time.Millisecond))
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // a server left behind
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "myapp", "server.log"))
		t.Fatalf("README walk-through failed: %v\n%s\nserver log:\n%s", err, out, log)
	}
	for _, want := range []string{
		"my first secret\n",                                 // the fetch, as your app
		"matched_app        my-app",                         // whoami
		"refused (PermissionDenied): ",                      // the older build
		`isv_svn 1 not allowed (app "my-app" expects >= 2)`, // … with the reason
		"refused (exit 1)",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
