package restorer

import (
	"maps"
	"slices"
	"testing"
)

// An include below another one is dropped: the walk restores it with the
// other and would never mark it found.
func TestCleanIncludesNested(t *testing.T) {
	cases := []struct {
		in, want []string
	}{
		{[]string{"/a", "/a/b", "/c/d"}, []string{"a", "c/d"}},
		{[]string{"/a/b/c", "a"}, []string{"a"}},
		{[]string{"/", "/a"}, []string{""}},
		{[]string{"/ab", "/a"}, []string{"a", "ab"}},
	}
	for _, c := range cases {
		got, err := cleanIncludes(c.in)
		if err != nil {
			t.Fatal(err)
		}
		if keys := slices.Sorted(maps.Keys(got)); !slices.Equal(keys, c.want) {
			t.Errorf("cleanIncludes(%q) = %q, want %q", c.in, keys, c.want)
		}
	}
}
