package config

import "go.yaml.in/yaml/v3"

// boolean decodes true or false into *b; null leaves *b as it is (the
// key's default). Strings ("yes", "on", "1") are errors: YAML 1.1's
// spellings mean different things to different readers.
func (d *decoder) boolean(b *bool) handler {
	return func(v *yaml.Node, path string, line int) error {
		v = resolve(v)
		if isNull(v) {
			return nil
		}
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool" {
			return d.errorf(line, path, "%s: want true or false, not %s", path, describe(v))
		}
		return v.Decode(b)
	}
}
