// UART transmitter, 8N1, LSB first.
// Ports: data/start (a byte is taken when start and ready are both high), ready (idle),
// tx (idle high, registered).
// Parameters: CLKS_PER_BIT (clock cycles per bit).
// Cycles: 10 * CLKS_PER_BIT per byte; a byte offered while the previous one's stop bit
// ends is taken on the cycle ready rises, so bytes can follow back to back.
module uart_tx #(
  parameter CLKS_PER_BIT = 16
) (
  input wire clk,
  input wire rst,
  input wire [7:0] data,
  input wire start,
  output wire ready,
  output reg tx
);
  localparam CW = $clog2(CLKS_PER_BIT + 1);
  localparam integer FULL_I = CLKS_PER_BIT - 1;
  localparam [CW-1:0] FULL = FULL_I[CW-1:0];

  reg [8:0] shift;  // data bits then the stop bit, LSB first
  reg [3:0] left;   // bit periods left, including the one on the line
  reg [CW-1:0] cnt;

  assign ready = (left == 4'd0);

  always @(posedge clk) begin
    if (rst) begin
      tx <= 1'b1;
      shift <= 9'h1ff;
      left <= 4'd0;
      cnt <= {CW{1'b0}};
    end else if (ready) begin
      if (start) begin
        tx <= 1'b0;
        shift <= {1'b1, data};
        left <= 4'd10;
        cnt <= {CW{1'b0}};
      end
    end else begin
      cnt <= cnt + 1'b1;
      if (cnt == FULL) begin
        cnt <= {CW{1'b0}};
        left <= left - 1'b1;
        tx <= shift[0];
        shift <= {1'b1, shift[8:1]};
      end
    end
  end
endmodule
