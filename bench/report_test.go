package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The generated section replaces the one between the markers, leaving
// the rest of the file alone; a file without one gets it appended.
func TestReplaceSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "B.md")
	os.WriteFile(path, []byte("# Bench\n\nintro\n"), 0o644)
	if err := replaceSection(path, beginMarker+"\nfirst\n"+endMarker+"\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	os.WriteFile(path, append(b, []byte("\n## After\n\ntail\n")...), 0o644)
	if err := replaceSection(path, beginMarker+"\nsecond\n"+endMarker+"\n"); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	s := string(b)
	if strings.Contains(s, "first") || !strings.Contains(s, "second") || !strings.HasPrefix(s, "# Bench\n\nintro\n") ||
		!strings.HasSuffix(s, "\n## After\n\ntail\n") || strings.Count(s, beginMarker) != 1 {
		t.Fatalf("file:\n%s", s)
	}
}
