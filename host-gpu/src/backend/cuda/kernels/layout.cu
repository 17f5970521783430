/* layout.cu — data movement (bits copied, any 32-bit dtype): permute, slice,
 * concat, gather, and the gather index check. */

/* out[base_out + i] = x[base_x + off(i)] over d (operand 0's strides). Permute. */
extern "C" __global__ void assay_strided_copy(const u32 *x, u32 *out, StridedDims d, u64 n, i64 base_x,
                                              i64 base_out) {
    for (u64 i = assay_tid(); i < n; i += assay_stride()) {
        i64 ox, unused;
        assay_offsets(d, i, &ox, &unused);
        out[base_out + (i64)i] = x[base_x + ox];
    }
}

/* Copies `rows` runs of `run` elements: out[r*out_row + out_at + c] = x[r*in_row + in_at + c].
 * Slice (one launch) and concat (one launch per input). */
extern "C" __global__ void assay_copy_runs(const u32 *x, u32 *out, u64 rows, u64 run, u64 in_row, u64 in_at,
                                           u64 out_row, u64 out_at) {
    u64 total = rows * run;
    for (u64 i = assay_tid(); i < total; i += assay_stride()) {
        u64 r = i / run;
        u64 c = i - r * run;
        out[r * out_row + out_at + c] = x[r * in_row + in_at + c];
    }
}

/* Rows of table [v, d] picked by idx (already checked to be in 0..v). */
extern "C" __global__ void assay_gather_rows(const u32 *table, const int *idx, u32 *out, u64 count, u64 d,
                                             u64 v) {
    u64 total = count * d;
    for (u64 i = assay_tid(); i < total; i += assay_stride()) {
        u64 r = i / d;
        u64 c = i - r * d;
        int k = idx[r];
        /* never read out of bounds, whatever the caller checked */
        out[i] = (k >= 0 && (u64)k < v) ? table[(u64)k * d + c] : 0u;
    }
}

/* result[0] = the smallest position p with idx[p] < 0 or >= bound (stays at
 * its initial all-ones value when there is none). */
extern "C" __global__ void assay_first_bad_index(const int *idx, u64 n, u64 bound, u64 *result) {
    for (u64 i = assay_tid(); i < n; i += assay_stride()) {
        int k = idx[i];
        if (k < 0 || (u64)k >= bound) {
            atomicMin(result, i);
        }
    }
}
