// UART receiver, 8N1, LSB first.
// Ports: rx (idle high, asynchronous), data/valid (valid pulses one cycle per byte, data
// holds the byte until the next one completes).
// Parameters: CLKS_PER_BIT (clock cycles per bit, at least 4).
// The line passes a 2-FF synchroniser; a start bit is accepted only if it is still low
// half a bit later (glitches are rejected), each bit is sampled in its middle, and a byte
// whose stop bit reads low (framing error) is dropped. The receiver is ready for the next
// start bit from the middle of the stop bit, so a sender's clock may run a little fast.
module uart_rx #(
  parameter CLKS_PER_BIT = 16
) (
  input wire clk,
  input wire rst,
  input wire rx,
  output reg [7:0] data,
  output reg valid
);
  localparam CW = $clog2(CLKS_PER_BIT + 1);
  localparam integer FULL_I = CLKS_PER_BIT - 1;
  localparam [CW-1:0] FULL = FULL_I[CW-1:0];
  localparam integer HALF_I = CLKS_PER_BIT / 2 - 1;
  localparam [CW-1:0] HALF = HALF_I[CW-1:0];
  localparam S_IDLE = 2'd0, S_START = 2'd1, S_DATA = 2'd2, S_STOP = 2'd3;

  reg sync0, sync1;
  reg [1:0] state;
  reg [CW-1:0] cnt;
  // cnt == HALF / cnt == FULL, compared a cycle ahead (cnt counts up by one from 0 in
  // each state, HALF < FULL - 1, and only START reads at_half)
  reg at_half, at_full;
  reg [2:0] bitn;
  reg [7:0] shift;

  always @(posedge clk) begin
    sync0 <= rx;
    sync1 <= sync0;
    valid <= 1'b0;
    if (rst) begin
      sync0 <= 1'b1;
      sync1 <= 1'b1;
      state <= S_IDLE;
      cnt <= {CW{1'b0}};
      at_half <= 1'b0;
      at_full <= 1'b0;
      bitn <= 3'd0;
      data <= 8'd0;
      shift <= 8'd0;
    end else begin
      at_half <= (state == S_START) && (cnt == HALF - 1'b1) && !at_half;
      at_full <= (state != S_IDLE) && (cnt == FULL - 1'b1) && !at_full;
      case (state)
        S_IDLE: begin
          cnt <= {CW{1'b0}};
          if (!sync1) state <= S_START;
        end
        S_START: begin
          cnt <= cnt + 1'b1;
          if (at_half) begin
            cnt <= {CW{1'b0}};
            bitn <= 3'd0;
            state <= sync1 ? S_IDLE : S_DATA;
          end
        end
        S_DATA: begin
          cnt <= cnt + 1'b1;
          if (at_full) begin
            cnt <= {CW{1'b0}};
            shift <= {sync1, shift[7:1]};
            bitn <= bitn + 1'b1;
            if (bitn == 3'd7) state <= S_STOP;
          end
        end
        default: begin  // S_STOP
          cnt <= cnt + 1'b1;
          if (at_full) begin
            if (sync1) begin
              data <= shift;
              valid <= 1'b1;
            end
            state <= S_IDLE;
          end
        end
      endcase
    end
  end
endmodule
