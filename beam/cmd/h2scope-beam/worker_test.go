package main

import "testing"

func TestHasFlag(t *testing.T) {
	tests := []struct {
		args []string
		name string
		want bool
	}{
		{[]string{"--worker=true", "--id=1"}, "worker", true},
		{[]string{"-worker"}, "worker", true},
		{[]string{"--worker=false"}, "worker", false},
		{[]string{"--worker_pool"}, "worker", false},
		{[]string{"--worker_pool", "--worker_pool_port=5"}, "worker_pool", true},
		{[]string{"--id='x'", "--provision_endpoint=localhost:1"}, "provision_endpoint", true},
		{[]string{"--out", "x", "--", "--worker=true"}, "worker", false},
		{[]string{"--out", "x", "dir"}, "worker", false},
	}
	for _, tt := range tests {
		if got := hasFlag(tt.args, tt.name); got != tt.want {
			t.Errorf("hasFlag(%q, %q) = %v, want %v", tt.args, tt.name, got, tt.want)
		}
	}
}
