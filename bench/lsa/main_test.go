package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// orthonormalColumns returns an n × k matrix with orthonormal columns, from a seeded random matrix.
func orthonormalColumns(n, k int, seed uint64) dense {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	d := newDense(n, k)
	for i := range d.data {
		d.data[i] = rng.NormFloat64()
	}
	orthonormalize(d, rng)
	return d
}

// withSingularValues builds A = U diag(sigma) Vᵀ as a sparse (but fully stored) rows × cols matrix.
func withSingularValues(rows, cols int, sigma []float64) (*csr, dense, dense) {
	u := orthonormalColumns(rows, len(sigma), 7)
	v := orthonormalColumns(cols, len(sigma), 11)
	a := &csr{rows: rows, cols: cols, ptr: []int{0}}
	for i := range rows {
		for j := range cols {
			x := 0.0
			for s, sv := range sigma {
				x += u.data[i*len(sigma)+s] * sv * v.data[j*len(sigma)+s]
			}
			a.idx = append(a.idx, int32(j))
			a.val = append(a.val, x)
		}
		a.ptr = append(a.ptr, len(a.idx))
	}
	return a, u, v
}

func TestRandomizedSVD(t *testing.T) {
	tests := []struct {
		name       string
		rows, cols int
		sigma      []float64 // the matrix's exact singular values, decreasing
		k          int
		tol        float64
	}{
		{"exact rank equals k", 60, 40, []float64{10, 7, 5, 3, 2, 1}, 6, 1e-9},
		{"truncate a rank-8 matrix to 3", 50, 80, []float64{9, 8, 6, 1e-1, 5e-2, 2e-2, 1e-2, 1e-3}, 3, 1e-6},
		{"clustered values", 100, 30, []float64{5, 4.999, 4.998, 1, 0.5}, 4, 1e-8},
		{"more columns than k+oversample", 120, 200, []float64{100, 50, 25, 12.5, 6.25, 3.125, 1.5, 0.75, 0.3, 0.1, 0.05, 0.02}, 5, 1e-6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, u, v := withSingularValues(tc.rows, tc.cols, tc.sigma)
			r := randomizedSVD(a, tc.k, 10, 2, 3)
			if r.k != tc.k || len(r.sigma) != tc.k {
				t.Fatalf("rank %d with %d values, want %d", r.k, len(r.sigma), tc.k)
			}
			for j := range tc.k {
				if d := math.Abs(r.sigma[j] - tc.sigma[j]); d > tc.tol*tc.sigma[0] {
					t.Errorf("σ%d = %.12g, want %.12g", j+1, r.sigma[j], tc.sigma[j])
				}
			}
			if !slices.IsSortedFunc(r.sigma, func(a, b float64) int { return -cmpF(a, b) }) {
				t.Errorf("singular values not decreasing: %v", r.sigma)
			}
			// Where the values are well separated, the singular vectors match up to sign.
			for j := range tc.k {
				if j+1 < len(tc.sigma) && tc.sigma[j]-tc.sigma[j+1] < 0.01 || j > 0 && tc.sigma[j-1]-tc.sigma[j] < 0.01 {
					continue
				}
				cu, cv := 0.0, 0.0
				for i := range tc.rows {
					cu += r.u.data[i*r.k+j] * u.data[i*len(tc.sigma)+j]
				}
				for i := range tc.cols {
					cv += r.v.data[i*r.k+j] * v.data[i*len(tc.sigma)+j]
				}
				if math.Abs(math.Abs(cu)-1) > 1e-6 || math.Abs(math.Abs(cv)-1) > 1e-6 || cu*cv < 0 {
					t.Errorf("singular vectors %d: |⟨u, û⟩| = %.9f, |⟨v, v̂⟩| = %.9f", j+1, cu, cv)
				}
			}
			// U and V have orthonormal columns.
			for _, m := range []dense{r.u, r.v} {
				for p := range r.k {
					for q := p; q < r.k; q++ {
						s := 0.0
						for i := range m.rows {
							s += m.data[i*r.k+p] * m.data[i*r.k+q]
						}
						want := 0.0
						if p == q {
							want = 1
						}
						if math.Abs(s-want) > 1e-8 {
							t.Errorf("column product (%d, %d) = %g, want %g", p, q, s, want)
						}
					}
				}
			}
		})
	}
}

func cmpF(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestJacobiEigen(t *testing.T) {
	// A symmetric matrix with eigenvalues 6, 3, 1 (and 2 × 2 blocks of known spectra).
	tests := []struct {
		name string
		a    []float64
		want []float64
	}{
		{"diagonal", []float64{1, 0, 0, 0, 6, 0, 0, 0, 3}, []float64{6, 3, 1}},
		{"2x2", []float64{2, 1, 1, 2}, []float64{3, 1}},
		{"3x3", []float64{2, -1, 0, -1, 2, -1, 0, -1, 2}, []float64{2 + math.Sqrt2, 2, 2 - math.Sqrt2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := len(tc.want)
			orig := slices.Clone(tc.a)
			vals, vecs := jacobiEigen(slices.Clone(tc.a), l)
			for j := range l {
				if math.Abs(vals[j]-tc.want[j]) > 1e-12 {
					t.Errorf("λ%d = %.15g, want %.15g", j+1, vals[j], tc.want[j])
				}
				// A v = λ v.
				for i := range l {
					s := 0.0
					for c := range l {
						s += orig[i*l+c] * vecs[c*l+j]
					}
					if math.Abs(s-vals[j]*vecs[i*l+j]) > 1e-12 {
						t.Errorf("(A v%d)[%d] = %g, want %g", j+1, i, s, vals[j]*vecs[i*l+j])
					}
				}
			}
		})
	}
}

func TestStem(t *testing.T) {
	for in, want := range map[string]string{
		"indexes": "index", "queries": "query", "tables": "table", "status": "status", "analysis": "analysis",
		"running": "runn", "created": "creat", "pg_tables": "pg_tables", "class": "class", "uses": "use",
	} {
		if got := stem(in); got != want {
			t.Errorf("stem(%q) = %q, want %q", in, got, want)
		}
	}
}
