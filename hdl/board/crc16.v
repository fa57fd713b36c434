// CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor), one byte
// per cycle.
// Ports: init (crc <= 0xFFFF; wins over en), en (fold data into crc), data, crc
// (registered; the value over every byte folded in so far).
// Each crc bit is the xor of at most 8 old crc and data bits: two LUT4 levels.
module crc16 (
  input wire clk,
  input wire init,
  input wire en,
  input wire [7:0] data,
  output reg [15:0] crc
);
  function [15:0] next_crc(input [15:0] c, input [7:0] d);
    integer i;
    reg [15:0] x;
    begin
      x = c ^ {d, 8'h00};
      for (i = 0; i < 8; i = i + 1) x = x[15] ? ({x[14:0], 1'b0} ^ 16'h1021) : {x[14:0], 1'b0};
      next_crc = x;
    end
  endfunction

  always @(posedge clk) begin
    if (init) crc <= 16'hffff;
    else if (en) crc <= next_crc(crc, data);
  end
endmodule
