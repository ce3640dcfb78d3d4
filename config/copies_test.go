package config

import (
	"slices"
	"testing"
)

func TestRepositoryCopies(t *testing.T) {
	repo := "repository:\n  url: s3://b/web\n  index_key: /etc/syncd/index.key\n"
	c, err := Parse([]byte(minimal+repo+"  copies:\n    - s3://b-eu/web\n    - /mnt/offsite/web\n"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Repository.Copies, []string{"s3://b-eu/web", "/mnt/offsite/web"}; !slices.Equal(got, want) {
		t.Errorf("copies = %q, want %q", got, want)
	}
	c, err = Parse([]byte(minimal+repo), "t.yaml")
	if err != nil || c.Repository.Copies != nil {
		t.Errorf("copies left out = %q, %v; want none", c.Repository.Copies, err)
	}

	bad := []struct{ name, yaml, want string }{
		{"relative", "  copies: [s3://b-eu/web, backups/web]\n", `t.yaml:7: repository.copies[1]: want s3://BUCKET[/PREFIX] or an absolute directory, not "backups/web"`},
		{"scheme", "  copies:\n    - gs://b/web\n", `t.yaml:8: repository.copies[0]: unknown scheme "gs" in "gs://b/web" (want s3://BUCKET[/PREFIX] or an absolute directory)`},
		{"no bucket", "  copies:\n    - s3:///web\n", `t.yaml:8: repository.copies[0]: want s3://BUCKET[/PREFIX], not "s3:///web" (no bucket)`},
		{"empty", "  copies:\n    - ''\n", `t.yaml:8: repository.copies[0]: required`},
		{"itself", "  copies:\n    - s3://b/web/\n", `t.yaml:8: repository.copies[0]: "s3://b/web/" is repository.url itself: a copy goes to another repository`},
		{"twice", "  copies:\n    - s3://b-eu/web\n    - s3://b-eu/web\n", `t.yaml:9: repository.copies[1]: "s3://b-eu/web" is listed twice (first at line 8)`},
		{"a string", "  copies: s3://b-eu/web\n", `t.yaml:7: repository.copies: want a list, not "s3://b-eu/web"`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(minimal+repo+tt.yaml), "t.yaml")
			if err == nil || err.Error() != tt.want {
				t.Errorf("error = %v\nwant    %s", err, tt.want)
			}
		})
	}
}
