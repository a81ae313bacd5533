package version

import "testing"

func TestString(t *testing.T) {
	tests := []struct {
		v    Info
		want string
	}{
		{Info{Module: "(devel)"}, "(devel)"},
		{Info{Module: "v1.2.3", Modified: true}, "v1.2.3"},
		{Info{Module: "(devel)", Revision: "abc", Time: "2026-12-07T00:00:00Z"}, "(devel) revision abc"},
		{Info{Module: "v1.2.3", Revision: "abc", Modified: true}, "v1.2.3 revision abc (modified)"},
	}
	for _, tt := range tests {
		if got := tt.v.String(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.v, got, tt.want)
		}
	}
	if Read().Module == "" {
		t.Error("Read: empty module version")
	}
}
