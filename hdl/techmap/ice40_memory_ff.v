// Post-synthesis map for iCE40: a memory word held in flip-flops is written through a
// LUT (D = E ? D : Q) into a flip-flop without clock enable.
//
// Why: the eight logic cells of an iCE40 logic block share one clock enable, so a memory
// in flip-flops whose words each have their own write enable takes a logic block per word
// (a 64 x 1-bit FIFO: 64 blocks for 64 bits). Written through the cell's own LUT, which
// is otherwise unused (the word's data input is a plain wire), the flip-flops pack eight to
// a block and the logic cell count stays the same.
// Applied by the board flow (src/flow.rs) to the SB_DFFE cells driving `mem` arrays only.
module SB_DFFE (input C, input E, input D, output Q);
  wire d_or_q;
  // LUT_INIT 16'hCACA: O = I2 ? I1 : I0
  SB_LUT4 #(.LUT_INIT(16'hCACA)) _TECHMAP_REPLACE_.mux (.I0(Q), .I1(D), .I2(E), .I3(1'b0), .O(d_or_q));
  SB_DFF _TECHMAP_REPLACE_ (.C(C), .D(d_or_q), .Q(Q));
endmodule
