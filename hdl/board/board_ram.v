// Simple dual-port RAM: one write port, one read port with a registered output, for
// block RAM inference (iCE40 SB_RAM40_4K, ECP5 DP16KD).
// Ports: we/waddr/wdata (written at the clock edge), raddr/rdata (rdata is mem[raddr]
// one cycle after raddr; a read of the address being written returns the old word).
// Parameters: WIDTH (bits a word), DEPTH (words), AW (address bits).
module board_ram #(
  parameter WIDTH = 8,
  parameter DEPTH = 1024,
  parameter AW = 10
) (
  input wire clk,
  input wire we,
  input wire [AW-1:0] waddr,
  input wire [WIDTH-1:0] wdata,
  input wire [AW-1:0] raddr,
  output reg [WIDTH-1:0] rdata
);
  reg [WIDTH-1:0] mem[0:DEPTH-1];

  always @(posedge clk) begin
    if (we) mem[waddr] <= wdata;
    rdata <= mem[raddr];
  end
endmodule
