package ownname

import "testing"

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
}
