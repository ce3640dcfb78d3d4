package ownname

import (
	"path"
	"testing"
)

func TestNames(t *testing.T) {
	for name, want := range map[string]bool{".syncd-folder": true, ".syncd-tmp-0a1b": true, ".syncd-": true,
		".syncd": false, "syncd-tmp": false, "index.php": false, ".sync-conflict": false} {
		if Is(name) != want {
			t.Errorf("Is(%q) = %v", name, !want)
		}
	}
	if !Is(Marker) || IsTemp(Marker) {
		t.Errorf("the marker %q: own %v, temporary %v", Marker, Is(Marker), IsTemp(Marker))
	}
	a, b := Temp(), Temp()
	if a == b || !Is(a) || !IsTemp(a) || len(a) != len(tempPrefix)+12 {
		t.Errorf("temporary names %q, %q", a, b)
	}
	if dir, name := path.Split(TempBeside("d/e/f.txt")); dir != "d/e/" || !IsTemp(name) {
		t.Errorf("TempBeside(d/e/f.txt) = %q", dir+name)
	}
	if dir, name := path.Split(TempBeside("f.txt")); dir != "" || !IsTemp(name) {
		t.Errorf("TempBeside(f.txt) = %q", dir+name)
	}
	if got, want := RestoreTemp("d/f.txt", 7), "d/.syncd-restore-7"; got != want {
		t.Errorf("RestoreTemp(d/f.txt, 7) = %q, want %q", got, want)
	}
	if name := RestoreTemp("f", 1); !Is(name) || IsTemp(name) {
		t.Errorf("RestoreTemp(f, 1) = %q: own %v, a receiver's temporary %v", name, Is(name), IsTemp(name))
	}
}
