package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// rulesDir holds the shipped Prometheus rules and their promtool tests.
const rulesDir = "../deploy/prometheus"

// TestPrometheusRules checks the shipped alerting rules with promtool
// (Debian package prometheus) and runs their unit tests, which cover
// every rule firing and not firing.
func TestPrometheusRules(t *testing.T) {
	promtool := tool(t, "promtool")
	for _, args := range [][]string{
		{"check", "rules", "syncd-rules.yml"},
		{"test", "rules", "syncd-rules_test.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = rulesDir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
