// The board core: board protocol 1 (shared/spec/board-protocol.md) between a UART and
// an accelerator's AXI streams.
//
// Ports: clk; rst (synchronous, active high); uart_rx/uart_tx (8N1, idle high);
// led_activity (lit ~50 ms after each answer), led_error (lit ~0.5 s after an ERROR
// answer); s_axis_* (to the accelerator's input), m_axis_* (from its output).
// Parameters: CLOCK_HZ, BAUD (clock cycles per bit = round(CLOCK_HZ / BAUD), at least
// 4); the accelerator's streams: IN_BITS, IN_SIGNED, LANES, IN_ELEMENTS, OUT_BITS,
// OUT_SIGNED, OUT_ELEMENTS (binary = 1 bit unsigned); NETWORK_HASH and CYCLES_PER_FRAME
// (reported by INFO).
//
// Receiver: hunts for 0xB5, then type, length, payload, CRC; a packet whose next byte
// is more than CLOCK_HZ / 50 cycles (20 ms) late is dropped. Any length is received;
// only a FRAME (0x02) or BENCH (0x03) of exactly the right length is stored.
// Answers go out in the order their packets were received whole: 0xEE with code 1 (bad
// CRC), 2 (unknown type), 3 (wrong length) or 4 (element out of range, BENCH count 0),
// checked in that order; 0x81 INFO; 0x82 RESULT; 0x83 BENCH. An erroneous packet never
// reaches s_axis.
//
// Frames: two frame buffers (ping-pong, block RAM, beats of LANES * IN_BITS bits). A
// frame is committed when its CRC and checks pass and is streamed into the accelerator
// one beat per cycle as it takes them, while the next frame arrives in the other buffer.
// Host rule: at most two FRAME/BENCH packets unanswered. A frame that arrives while both
// buffers are still in use has nowhere to go; it is dropped and answered with ERROR 1,
// as if it had been corrupted on the line. Outputs go into a one-frame output buffer
// (the accelerator's m_axis waits while it holds an unsent result) and out through the
// transmitter, the CRC computed as the bytes go. At most 8 answers wait to be sent.
//
// BENCH: starts once the accelerator, the output buffer and the transmitter's use of it
// are idle; streams the frame `count` times back to back, takes every output at full
// rate (all but the last run's are discarded) and counts the cycles from the first input
// beat of the first run to the last output beat (tlast) of the last (the difference of
// the two clock edges).
//
// Cycles: the core accepts a byte per UART byte time and streams a beat per cycle;
// answer bytes follow one another on the line with no gap. An answer starts a few
// cycles after its packet's last byte (or its frame's tlast).
// Size at TFC's parameters (784 x 8-bit in, 10 x 8-bit out), yosys 0.23 synth_ice40:
// 1156 LUT4, 741 FF, 5 SB_RAM40_4K (frame buffers 4, output buffer 1). Decisions that
// would chain many LUT levels are taken a cycle ahead into flops (start of a job, last
// beat, CRC bytes, the BENCH prefix); the 32-bit run counters are two 16-bit halves.
module bnnforge_board #(
  parameter CLOCK_HZ = 48000000,
  parameter BAUD = 115200,
  parameter IN_BITS = 8,
  parameter IN_SIGNED = 0,
  parameter LANES = 1,
  parameter IN_ELEMENTS = 784,
  parameter OUT_BITS = 16,
  parameter OUT_SIGNED = 1,
  parameter OUT_ELEMENTS = 10,
  parameter [63:0] NETWORK_HASH = 64'h0,
  parameter CYCLES_PER_FRAME = 784
) (
  input wire clk,
  input wire rst,
  input wire uart_rx,
  output wire uart_tx,
  output wire led_activity,
  output wire led_error,
  output wire [LANES*IN_BITS-1:0] s_axis_tdata,
  output wire s_axis_tvalid,
  input wire s_axis_tready,
  input wire [OUT_BITS-1:0] m_axis_tdata,
  input wire m_axis_tvalid,
  output wire m_axis_tready,
  input wire m_axis_tlast
);
  // ---------------------------------------------------------------- sizes
  localparam CPB = (CLOCK_HZ + BAUD / 2) / BAUD;
  localparam IEB = (IN_BITS + 7) / 8;  // bytes an input element
  localparam IEW = IEB * 8;
  localparam OEB = (OUT_BITS + 7) / 8;  // bytes an output element
  localparam OEW = OEB * 8;
  localparam BW = LANES * IN_BITS;  // bits a beat
  localparam BEATS = (IN_ELEMENTS + LANES - 1) / LANES;
  localparam BAW = BEATS > 1 ? $clog2(BEATS) : 1;
  localparam OAW = OUT_ELEMENTS > 1 ? $clog2(OUT_ELEMENTS) : 1;
  localparam LW = LANES > 1 ? $clog2(LANES) : 1;
  localparam EBW = IEB > 1 ? $clog2(IEB) : 1;
  localparam OBW = OEB > 1 ? $clog2(OEB) : 1;
  localparam TOW = $clog2(CLOCK_HZ / 50 + 1);
  localparam integer TIMEOUT_I = CLOCK_HZ / 50;
  localparam [TOW-1:0] TIMEOUT = TIMEOUT_I[TOW-1:0];
  localparam integer FRAME_LEN_I = IN_ELEMENTS * IEB;
  localparam [15:0] FRAME_LEN = FRAME_LEN_I[15:0];
  localparam integer BENCH_LEN_I = IN_ELEMENTS * IEB + 4;
  localparam [15:0] BENCH_LEN = BENCH_LEN_I[15:0];
  localparam integer RESULT_LEN_I = OUT_ELEMENTS * OEB;
  localparam [15:0] RESULT_LEN = RESULT_LEN_I[15:0];
  localparam integer BREPLY_LEN_I = OUT_ELEMENTS * OEB + 8;
  localparam [15:0] BREPLY_LEN = BREPLY_LEN_I[15:0];
  localparam integer LAST_ELEM_I = IN_ELEMENTS - 1;
  localparam [15:0] LAST_ELEM = LAST_ELEM_I[15:0];
  localparam integer LAST_BEAT_I = BEATS - 1;
  localparam [BAW-1:0] LAST_BEAT = LAST_BEAT_I[BAW-1:0];
  localparam integer LAST_LANE_I = LANES - 1;
  localparam [LW-1:0] LAST_LANE = LAST_LANE_I[LW-1:0];
  localparam integer LAST_IEB_I = IEB - 1;
  localparam integer LAST_OEB_I = OEB - 1;
  localparam [EBW-1:0] LAST_IEB = LAST_IEB_I[EBW-1:0];
  localparam [OBW-1:0] LAST_OEB = LAST_OEB_I[OBW-1:0];
  localparam integer N_OUT_I = OUT_ELEMENTS;
  localparam [OAW:0] N_OUT = N_OUT_I[OAW:0];
  localparam integer LAST_OUT_I = OUT_ELEMENTS - 1;
  localparam [OAW-1:0] LAST_OUT = LAST_OUT_I[OAW-1:0];

  // INFO's payload, byte i in bits [8i, 8i+8).
  localparam integer I_IN_BITS = IN_BITS;
  localparam integer I_IN_SIGNED = IN_SIGNED;
  localparam integer I_OUT_BITS = OUT_BITS;
  localparam integer I_OUT_SIGNED = OUT_SIGNED;
  function [295:0] info_payload(input unused);  // Verilog-2005 functions take an input
    begin
      info_payload = {296{1'b0}};
      info_payload[31:0] = 32'h464e4e42;  // "BNNF"
      info_payload[39:32] = 8'd1;
      info_payload[103:40] = NETWORK_HASH;
      info_payload[135:104] = CLOCK_HZ;
      info_payload[167:136] = BAUD;
      info_payload[199:168] = IN_ELEMENTS;
      info_payload[207:200] = I_IN_BITS[7:0];
      info_payload[215:208] = I_IN_SIGNED[7:0];
      info_payload[247:216] = OUT_ELEMENTS;
      info_payload[255:248] = I_OUT_BITS[7:0];
      info_payload[263:256] = I_OUT_SIGNED[7:0];
      info_payload[295:264] = CYCLES_PER_FRAME;
      info_payload[0] = info_payload[0] | unused;
    end
  endfunction
  localparam [295:0] INFO_ROM = info_payload(1'b0);

  // answer kinds in the queue
  localparam [1:0] K_INFO = 2'd0, K_RESULT = 2'd1, K_BENCH = 2'd2, K_ERROR = 2'd3;

  // ---------------------------------------------------------------- UART receive
  wire [7:0] rx_byte;
  wire rx_valid;
  uart_rx #(.CLKS_PER_BIT(CPB)) u_rx (
    .clk(clk), .rst(rst), .rx(uart_rx), .data(rx_byte), .valid(rx_valid)
  );

  // ---------------------------------------------------------------- receiver
  localparam [2:0] R_HUNT = 3'd0, R_TYPE = 3'd1, R_LEN0 = 3'd2, R_LEN1 = 3'd3,
                   R_PAY = 3'd4, R_CRC0 = 3'd5, R_CRC1 = 3'd6, R_DONE = 3'd7;
  // one-hot: its decodes, ANDed with rx_valid, enable most receiver registers
  (* fsm_encoding = "one-hot" *) reg [2:0] rstate;
  reg [TOW-1:0] r_idle;      // cycles since the last byte of this packet
  reg [1:0] r_kind;          // 1 INFO, 2 FRAME, 3 BENCH, 0 unknown
  reg [7:0] r_len_lo;
  reg [15:0] r_left;         // payload bytes still to come
  reg r_len_ok, r_store;     // length right for the type; a FRAME/BENCH to store
  reg [2:0] r_hdr;           // BENCH count bytes still to come
  reg r_cnt_chk;             // the count is complete: check it next cycle
  reg [31:0] r_count;
  reg r_crc_lo_ok, r_crc_hi_ok;  // each CRC byte as received equals the computed one
  reg r_bad;                 // an element out of range (or count 0)
  reg r_no_room;             // a beat found its buffer still in use
  reg [IEW-1:0] r_ebuf;      // element being assembled, little-endian
  reg [EBW-1:0] r_eb;        // its bytes so far
  reg r_edone;               // r_ebuf is complete: check and place it
  reg [15:0] r_elem;         // element index in the frame
  reg [LW-1:0] r_lane;
  reg [BW-1:0] r_beat;
  reg r_bwr;                 // r_beat is complete: write it
  reg [BAW-1:0] r_bidx;      // beat index in the frame

  wire [15:0] crc_rx;
  crc16 u_crc_rx (
    .clk(clk),
    .init(rx_valid && rstate == R_HUNT),
    .en(rx_valid && (rstate == R_TYPE || rstate == R_LEN0 || rstate == R_LEN1 || rstate == R_PAY)),
    .data(rx_byte),
    .crc(crc_rx)
  );

  wire [15:0] len_now = {rx_byte, r_len_lo};
  wire len_ok_now = (r_kind == 2'd1 && len_now == 16'd0) ||
                    (r_kind == 2'd2 && len_now == FRAME_LEN) ||
                    (r_kind == 2'd3 && len_now == BENCH_LEN);

  // element range: unsigned (and binary) have nothing above IN_BITS; signed ones are
  // sign extensions of their low IN_BITS bits
  wire [IEW-1:0] e_hi_u = r_ebuf >> IN_BITS;
  wire signed [IEW-1:0] e_hi_s = $signed(r_ebuf) >>> (IN_BITS - 1);
  wire elem_ok = (IN_SIGNED != 0) ? (e_hi_s == {IEW{1'b0}} || e_hi_s == {IEW{1'b1}})
                           : (e_hi_u == {IEW{1'b0}});
  wire [IEW-1:0] ebuf_next;  // r_ebuf shifted right a byte, rx_byte on top
  generate
    if (IEW > 8) begin : g_eshift
      assign ebuf_next = {rx_byte, r_ebuf[IEW-1:8]};
    end else begin : g_enoshift
      assign ebuf_next = rx_byte;
    end
  endgenerate

  // frame buffers and who holds them
  reg [1:0] buf_full;        // committed, not yet streamed
  reg [1:0] buf_bench;
  reg [31:0] buf_more0, buf_more1;  // a BENCH's runs after the first
  reg [1:0] buf_once;        // ... of which there are none
  reg wr_sel;                // buffer the receiver fills
  reg rd_sel;                // buffer the streamer empties next
  wire fb_we = r_bwr && !buf_full[wr_sel];

  // answer queue (8 entries of kind, code)
  reg [4:0] q_mem[0:7];
  reg [2:0] q_wp, q_rp;
  reg [3:0] q_n;
  reg q_push;
  reg [4:0] q_in;
  wire q_pop;
  reg obuf_full;             // the output buffer holds a result not yet sent
  wire obuf_clear;           // ... which is sent now
  reg [4:0] q_head;          // q_mem[q_rp], a cycle old
  reg head_ready;            // q_head can be answered now (a cycle old)

  reg commit;                // the packet in R_DONE is a good FRAME/BENCH
  wire crc_good = r_crc_lo_ok && r_crc_hi_ok;

  always @(posedge clk) begin : receiver
    integer i;
    q_push <= 1'b0;
    commit <= 1'b0;
    if (rst) begin
      rstate <= R_HUNT;
      r_idle <= {TOW{1'b0}};
      r_kind <= 2'd0;
      r_len_lo <= 8'd0;
      r_left <= 16'd0;
      r_len_ok <= 1'b0;
      r_store <= 1'b0;
      r_hdr <= 3'd0;
      r_cnt_chk <= 1'b0;
      r_count <= 32'd0;
      r_crc_lo_ok <= 1'b0;
      r_crc_hi_ok <= 1'b0;
      r_bad <= 1'b0;
      r_no_room <= 1'b0;
      r_ebuf <= {IEW{1'b0}};
      r_eb <= {EBW{1'b0}};
      r_edone <= 1'b0;
      r_elem <= 16'd0;
      r_lane <= {LW{1'b0}};
      r_beat <= {BW{1'b0}};
      r_bwr <= 1'b0;
      r_bidx <= {BAW{1'b0}};
      q_in <= 5'd0;
    end else begin
      // inter-byte timeout: drop the packet
      if (rstate == R_HUNT || rstate == R_DONE || rx_valid) r_idle <= {TOW{1'b0}};
      else r_idle <= r_idle + 1'b1;
      if (rstate != R_HUNT && rstate != R_DONE && r_idle == TIMEOUT) rstate <= R_HUNT;

      if (rx_valid) begin
        case (rstate)
          R_HUNT: if (rx_byte == 8'hb5) rstate <= R_TYPE;
          R_TYPE: begin
            r_kind <= (rx_byte == 8'h01) ? 2'd1 : (rx_byte == 8'h02) ? 2'd2 :
                      (rx_byte == 8'h03) ? 2'd3 : 2'd0;
            rstate <= R_LEN0;
          end
          R_LEN0: begin
            r_len_lo <= rx_byte;
            rstate <= R_LEN1;
          end
          R_LEN1: begin
            r_left <= len_now;
            r_len_ok <= len_ok_now;
            r_store <= len_ok_now && r_kind[1];
            r_hdr <= (r_kind == 2'd3) ? 3'd4 : 3'd0;
            r_bad <= 1'b0;
            r_no_room <= 1'b0;
            r_eb <= {EBW{1'b0}};
            r_elem <= 16'd0;
            r_lane <= {LW{1'b0}};
            r_beat <= {BW{1'b0}};
            r_bidx <= {BAW{1'b0}};
            rstate <= (len_now == 16'd0) ? R_CRC0 : R_PAY;
          end
          R_PAY: begin
            r_left <= r_left - 1'b1;
            if (r_left == 16'd1) rstate <= R_CRC0;
            if (r_store) begin
              if (r_hdr != 3'd0) begin
                r_count <= {rx_byte, r_count[31:8]};
                r_hdr <= r_hdr - 1'b1;
                r_cnt_chk <= (r_hdr == 3'd1);
              end else begin
                r_ebuf <= ebuf_next;
                if (r_eb == LAST_IEB) begin
                  r_eb <= {EBW{1'b0}};
                  r_edone <= 1'b1;
                end else begin
                  r_eb <= r_eb + 1'b1;
                end
              end
            end
          end
          R_CRC0: begin
            r_crc_lo_ok <= (rx_byte == crc_rx[7:0]);
            rstate <= R_CRC1;
          end
          R_CRC1: begin
            r_crc_hi_ok <= (rx_byte == crc_rx[15:8]);
            rstate <= R_DONE;
          end
          default: ;
        endcase
      end

      // BENCH count 0 is out of range
      if (r_cnt_chk) begin
        r_cnt_chk <= 1'b0;
        if (r_count == 32'd0) r_bad <= 1'b1;
      end

      // a complete element: check it, place it in its lane
      if (r_edone) begin
        r_edone <= 1'b0;
        if (!elem_ok) r_bad <= 1'b1;
        for (i = 0; i < LANES; i = i + 1)
          if (r_lane == i[LW-1:0]) r_beat[i*IN_BITS +: IN_BITS] <= r_ebuf[IN_BITS-1:0];
        r_elem <= r_elem + 1'b1;
        if (r_lane == LAST_LANE || r_elem == LAST_ELEM) begin
          r_lane <= {LW{1'b0}};
          r_bwr <= 1'b1;
        end else begin
          r_lane <= r_lane + 1'b1;
        end
      end

      // a complete beat: written to the buffer being filled (see fb_we)
      if (r_bwr) begin
        r_bwr <= 1'b0;
        r_beat <= {BW{1'b0}};
        r_bidx <= r_bidx + 1'b1;
        if (buf_full[wr_sel]) r_no_room <= 1'b1;
      end

      // the packet is whole: answer it (and commit a good frame)
      if (rstate == R_DONE) begin
        rstate <= R_HUNT;
        q_push <= 1'b1;
        if (!crc_good) q_in <= {K_ERROR, 3'd1};
        else if (r_kind == 2'd0) q_in <= {K_ERROR, 3'd2};
        else if (!r_len_ok) q_in <= {K_ERROR, 3'd3};
        else if (r_store && r_bad) q_in <= {K_ERROR, 3'd4};
        else if (r_store && r_no_room) q_in <= {K_ERROR, 3'd1};
        else if (r_kind == 2'd1) q_in <= {K_INFO, 3'd0};
        else begin
          q_in <= {(r_kind == 2'd3) ? K_BENCH : K_RESULT, 3'd0};
          commit <= 1'b1;
        end
      end
    end
  end

  // the answer queue
  always @(posedge clk) begin
    if (rst) begin
      q_wp <= 3'd0;
      q_rp <= 3'd0;
      q_n <= 4'd0;
      q_head <= 5'd0;
      head_ready <= 1'b0;
    end else begin
      if (q_push && q_n != 4'd8) begin
        q_mem[q_wp] <= q_in;
        q_wp <= q_wp + 1'b1;
      end
      if (q_pop) q_rp <= q_rp + 1'b1;
      // The generator leaves G_IDLE for many cycles after a pop, so these may lag: a
      // RESULT/BENCH waits for a full output buffer that is not being emptied now.
      q_head <= q_mem[q_rp];
      head_ready <= q_n != 4'd0 && !q_pop &&
                    (q_mem[q_rp][4:3] == K_INFO || q_mem[q_rp][4:3] == K_ERROR ||
                     (obuf_full && !obuf_clear));
      q_n <= q_n + {3'd0, q_push && q_n != 4'd8} - {3'd0, q_pop};
    end
  end

  // ---------------------------------------------------------------- frame buffers
  wire [BW-1:0] fb_q;
  reg [BAW-1:0] st_idx;
  reg st_last;               // st_idx == LAST_BEAT
  board_ram #(.WIDTH(BW), .DEPTH(2 << BAW), .AW(BAW + 1)) u_frames (
    .clk(clk),
    .we(fb_we),
    .waddr({wr_sel, r_bidx}),
    .wdata(r_beat),
    .raddr({rd_sel, st_idx}),
    .rdata(fb_q)
  );

  // ---------------------------------------------------------------- streamer
  reg st_busy, st_bench, st_first, st_final;
  // runs left after the current one: {st_runs_hi, st_runs_lo}, the high half taking
  // the low half's borrow a cycle late (two 16-bit carry chains, not one of 32)
  reg [15:0] st_runs_lo, st_runs_hi;
  reg st_borrow;
  reg [2:0] occ;             // beats read and not yet taken by the accelerator
  reg v1, v2, l1, l2, f1, f2;  // pipeline: valid, last beat of a run, first of a BENCH
  reg [BW-1:0] p_q;
  // FIFO of beats read, its head always in entry 0 (s_axis_tdata straight from flops)
  reg [BW-1:0] f_data[0:3];
  reg [1:0] f_tag[0:3];      // {first beat of a BENCH, last beat of a run}
  reg [2:0] f_n;
  reg [7:0] in_flight;       // frames wholly sent in whose tlast has not come out
  reg bench_mode, discarding;
  wire issue = st_busy && occ[2] == 1'b0;
  wire pop = s_axis_tvalid && s_axis_tready;
  wire [1:0] pop_tag = f_tag[0];
  reg f_vld;                 // f_n != 0, as a flop
  wire take = m_axis_tvalid && m_axis_tready;
  // nothing in the accelerator or on the output path (a cycle old: st_busy, set by a
  // job's start, keeps a second start from following on stale news)
  reg idle;
  reg bench_go;              // a BENCH started last cycle
  wire [31:0] more_sel = rd_sel ? buf_more1 : buf_more0;
  // a job starts a cycle after it is decided (start_job a flop): buf_full[rd_sel] and
  // buf_bench[rd_sel] cannot change while no job runs, and the decision's own cycle
  // keeps a second one from following
  reg start_job;
  wire bench_start = start_job && buf_bench[rd_sel];

  assign s_axis_tdata = f_data[0];
  assign s_axis_tvalid = f_vld;

  always @(posedge clk) begin : streamer
    integer j;
    if (rst) begin
      buf_full <= 2'b00;
      buf_bench <= 2'b00;
      buf_more0 <= 32'd0;
      buf_more1 <= 32'd0;
      buf_once <= 2'b00;
      wr_sel <= 1'b0;
      rd_sel <= 1'b0;
      st_busy <= 1'b0;
      st_bench <= 1'b0;
      st_first <= 1'b0;
      st_final <= 1'b0;
      st_runs_lo <= 16'd0;
      st_runs_hi <= 16'd0;
      st_borrow <= 1'b0;
      st_idx <= {BAW{1'b0}};
      occ <= 3'd0;
      v1 <= 1'b0;
      v2 <= 1'b0;
      l1 <= 1'b0;
      l2 <= 1'b0;
      f1 <= 1'b0;
      f2 <= 1'b0;
      p_q <= {BW{1'b0}};
      idle <= 1'b0;
      start_job <= 1'b0;
      st_last <= 1'b0;
      bench_go <= 1'b0;
      f_n <= 3'd0;
      f_vld <= 1'b0;
      in_flight <= 8'd0;
    end else begin
      if (commit) begin
        buf_full[wr_sel] <= 1'b1;
        buf_bench[wr_sel] <= (r_kind == 2'd3);
        buf_once[wr_sel] <= (r_count == 32'd1);
        if (wr_sel) buf_more1 <= r_count - 1'b1;
        else buf_more0 <= r_count - 1'b1;
        wr_sel <= !wr_sel;
      end
      start_job <= !st_busy && !start_job && buf_full[rd_sel] &&
                   (!buf_bench[rd_sel] || idle);
      st_borrow <= 1'b0;
      st_runs_hi <= st_runs_hi - {15'd0, st_borrow};
      if (start_job) begin
        st_busy <= 1'b1;
        st_bench <= buf_bench[rd_sel];
        st_first <= 1'b1;
        st_idx <= {BAW{1'b0}};
        st_last <= (LAST_BEAT == {BAW{1'b0}});
        {st_runs_hi, st_runs_lo} <= buf_bench[rd_sel] ? more_sel : 32'd0;
        st_final <= !buf_bench[rd_sel] || buf_once[rd_sel];
      end
      if (issue) begin
        st_first <= 1'b0;
        if (st_last) begin
          st_idx <= {BAW{1'b0}};
          st_last <= (LAST_BEAT == {BAW{1'b0}});
          st_runs_lo <= st_runs_lo - 1'b1;
          st_borrow <= (st_runs_lo == 16'd0);
          // with a borrow pending st_runs_lo is 0xffff: not 1 either way
          st_final <= (st_runs_lo == 16'd1 && st_runs_hi == 16'd0);
          if (st_final) begin
            st_busy <= 1'b0;
            buf_full[rd_sel] <= 1'b0;
            rd_sel <= !rd_sel;
          end
        end else begin
          st_idx <= st_idx + 1'b1;
          st_last <= (st_idx == LAST_BEAT - 1'b1);
        end
      end
      // read pipeline: address -> block RAM output -> p_q -> FIFO
      v1 <= issue;
      l1 <= st_last;
      f1 <= st_first && st_bench;
      v2 <= v1;
      l2 <= l1;
      f2 <= f1;
      p_q <= fb_q;
      for (j = 0; j < 3; j = j + 1)
        if (pop) begin
          f_data[j] <= f_data[j+1];
          f_tag[j] <= f_tag[j+1];
        end
      // a beat arriving goes behind the last one left after this cycle's pop
      for (j = 0; j < 4; j = j + 1)
        if (v2 && (pop ? f_n == j[2:0] + 3'd1 : f_n == j[2:0])) begin
          f_data[j] <= p_q;
          f_tag[j] <= {f2, l2};
        end
      idle <= !st_busy && occ == 3'd0 && in_flight == 8'd0 && !obuf_full && !bench_mode;
      bench_go <= bench_start;
      f_n <= f_n + {2'd0, v2} - {2'd0, pop};
      f_vld <= v2 || f_n > 3'd1 || (f_n == 3'd1 && !pop);
      occ <= occ + {2'd0, issue} - {2'd0, pop};
      in_flight <= in_flight + {7'd0, pop && pop_tag[0]} - {7'd0, take && m_axis_tlast};
    end
  end

  // ---------------------------------------------------------------- outputs, cycle count
  reg [OAW-1:0] out_idx;
  // BENCH outputs still to discard: {dl_hi, dl_lo}, split as st_runs is
  reg [15:0] dl_lo, dl_hi;
  reg dl_borrow;
  reg counting, carry;
  reg [31:0] cyc_lo, cyc_hi;
  wire store = take && !discarding;

  assign m_axis_tready = discarding || !obuf_full;

  always @(posedge clk) begin
    if (rst) begin
      out_idx <= {OAW{1'b0}};
      dl_lo <= 16'd0;
      dl_hi <= 16'd0;
      dl_borrow <= 1'b0;
      discarding <= 1'b0;
      bench_mode <= 1'b0;
      obuf_full <= 1'b0;
      counting <= 1'b0;
      carry <= 1'b0;
      cyc_lo <= 32'd0;
      cyc_hi <= 32'd0;
    end else begin
      dl_borrow <= 1'b0;
      dl_hi <= dl_hi - {15'd0, dl_borrow};
      if (bench_go) begin
        bench_mode <= 1'b1;
        {dl_hi, dl_lo} <= more_sel;
        discarding <= !buf_once[rd_sel];
      end
      if (take && discarding && m_axis_tlast) begin
        dl_lo <= dl_lo - 1'b1;
        dl_borrow <= (dl_lo == 16'd0);
        discarding <= !(dl_lo == 16'd1 && dl_hi == 16'd0);
      end
      if (store) begin
        out_idx <= out_idx + 1'b1;
        if (m_axis_tlast) begin
          out_idx <= {OAW{1'b0}};
          obuf_full <= 1'b1;
          bench_mode <= 1'b0;
        end
      end
      if (obuf_clear) obuf_full <= 1'b0;
      // 64-bit cycle counter, its upper half one cycle behind (a short carry chain)
      cyc_hi <= cyc_hi + {31'd0, carry};
      carry <= 1'b0;
      if (pop && pop_tag[1]) begin
        counting <= 1'b1;
        cyc_lo <= 32'd0;
        cyc_hi <= 32'd0;
      end else if (counting) begin
        cyc_lo <= cyc_lo + 1'b1;
        carry <= (cyc_lo == 32'hffffffff);
        if (store && m_axis_tlast && bench_mode) counting <= 1'b0;
      end
    end
  end

  wire [OUT_BITS-1:0] ob_q;
  reg [OAW-1:0] g_el;
  board_ram #(.WIDTH(OUT_BITS), .DEPTH(OUT_ELEMENTS), .AW(OAW)) u_out (
    .clk(clk),
    .we(store && {1'b0, out_idx} < N_OUT),
    .waddr(out_idx),
    .wdata(m_axis_tdata),
    .raddr(g_el),
    .rdata(ob_q)
  );

  // ---------------------------------------------------------------- answer generator
  localparam [2:0] G_IDLE = 3'd0, G_WAIT = 3'd1, G_PREP = 3'd2, G_SEND = 3'd3, G_ADV = 3'd4;
  localparam [1:0] PH_HDR = 2'd0, PH_PAY = 2'd1, PH_CRC = 2'd2;
  reg [2:0] gstate;
  reg [1:0] g_phase, g_kind, g_hidx;
  reg [2:0] g_code;
  reg g_wait, g_crc_hi;
  reg [15:0] g_len, g_left, g_pidx;
  reg [OBW-1:0] g_eb;
  reg [OUT_BITS-1:0] o_reg;  // output buffer word, registered once more
  reg [7:0] nb;              // the byte for the transmitter
  wire tx_ready;
  wire tx_start = (gstate == G_SEND) && tx_ready;
  wire [15:0] crc_tx;
  assign q_pop = (gstate == G_IDLE) && head_ready;
  wire [15:0] head_len = (q_head[4:3] == K_INFO) ? 16'd37 : (q_head[4:3] == K_ERROR) ? 16'd1 :
                         (q_head[4:3] == K_RESULT) ? RESULT_LEN : BREPLY_LEN;
  wire g_end = gstate == G_ADV && g_phase == PH_CRC && g_crc_hi;
  assign obuf_clear = g_end && (g_kind == K_RESULT || g_kind == K_BENCH);

  wire [OEW-1:0] o_ext;
  generate
    if (OEW > OUT_BITS) begin : g_ext
      assign o_ext = {{(OEW - OUT_BITS){OUT_SIGNED != 0 && o_reg[OUT_BITS-1]}}, o_reg};
    end else begin : g_noext
      assign o_ext = o_reg;
    end
  endgenerate

  wire [7:0] o_byte;  // byte g_eb of the output value
  generate
    if (OEB > 1) begin : g_obyte
      assign o_byte = o_ext[{g_eb, 3'd0} +: 8];
    end else begin : g_obyte1
      assign o_byte = o_ext;
    end
  endgenerate

  crc16 u_crc_tx (
    .clk(clk),
    .init(q_pop),
    .en(tx_start && (g_phase == PH_PAY || (g_phase == PH_HDR && g_hidx != 2'd0))),
    .data(nb),
    .crc(crc_tx)
  );

  uart_tx #(.CLKS_PER_BIT(CPB)) u_tx (
    .clk(clk), .rst(rst), .data(nb), .start(tx_start), .ready(tx_ready), .tx(uart_tx)
  );

  wire [63:0] cycles = {cyc_hi, cyc_lo};
  reg g_prefix;              // a BENCH answer's first 8 payload bytes (the cycles)
  wire in_prefix = g_prefix;

  always @(posedge clk) begin
    o_reg <= ob_q;
    if (rst) begin
      gstate <= G_IDLE;
      g_phase <= PH_HDR;
      g_kind <= K_INFO;
      g_hidx <= 2'd0;
      g_code <= 3'd0;
      g_wait <= 1'b0;
      g_crc_hi <= 1'b0;
      g_len <= 16'd0;
      g_left <= 16'd0;
      g_pidx <= 16'd0;
      g_prefix <= 1'b0;
      g_el <= {OAW{1'b0}};
      g_eb <= {OBW{1'b0}};
      nb <= 8'd0;
    end else begin
      case (gstate)
        G_IDLE: if (q_pop) begin
          g_kind <= q_head[4:3];
          g_code <= q_head[2:0];
          g_len <= head_len;
          g_left <= head_len;
          g_phase <= PH_HDR;
          g_hidx <= 2'd0;
          g_pidx <= 16'd0;
          g_prefix <= (q_head[4:3] == K_BENCH);
          g_crc_hi <= 1'b0;
          g_el <= {OAW{1'b0}};
          g_eb <= {OBW{1'b0}};
          g_wait <= 1'b0;
          gstate <= G_WAIT;
        end
        G_WAIT: begin  // two cycles for the output buffer's word to reach o_reg
          g_wait <= !g_wait;
          if (g_wait) gstate <= G_PREP;
        end
        G_PREP: begin
          case (g_phase)
            PH_HDR:
              case (g_hidx)
                2'd0: nb <= 8'hb5;
                2'd1: nb <= (g_kind == K_INFO) ? 8'h81 : (g_kind == K_RESULT) ? 8'h82 :
                            (g_kind == K_BENCH) ? 8'h83 : 8'hee;
                2'd2: nb <= g_len[7:0];
                default: nb <= g_len[15:8];
              endcase
            PH_PAY:
              if (g_kind == K_INFO) nb <= INFO_ROM[{g_pidx[5:0], 3'd0} +: 8];
              else if (g_kind == K_ERROR) nb <= {5'd0, g_code};
              else if (in_prefix) nb <= cycles[{g_pidx[2:0], 3'd0} +: 8];
              else nb <= o_byte;
            default: nb <= g_crc_hi ? crc_tx[15:8] : crc_tx[7:0];
          endcase
          gstate <= G_SEND;
        end
        G_SEND: if (tx_ready) gstate <= G_ADV;  // the transmitter takes nb now
        default: begin  // G_ADV: on to the next byte
          gstate <= G_WAIT;
          case (g_phase)
            PH_HDR: begin
              g_hidx <= g_hidx + 1'b1;
              if (g_hidx == 2'd3) g_phase <= PH_PAY;
            end
            PH_PAY: begin
              g_pidx <= g_pidx + 1'b1;
              if (g_pidx[2:0] == 3'd7) g_prefix <= 1'b0;
              g_left <= g_left - 1'b1;
              if (g_left == 16'd1) g_phase <= PH_CRC;
              if ((g_kind == K_RESULT || g_kind == K_BENCH) && !in_prefix) begin
                if (g_eb == LAST_OEB) begin
                  g_eb <= {OBW{1'b0}};
                  g_el <= (g_el == LAST_OUT) ? {OAW{1'b0}} : g_el + 1'b1;
                end else begin
                  g_eb <= g_eb + 1'b1;
                end
              end
            end
            default: begin
              g_crc_hi <= 1'b1;
              if (g_crc_hi) gstate <= G_IDLE;
            end
          endcase
        end
      endcase
    end
  end

  // ---------------------------------------------------------------- LEDs
  localparam MSW = $clog2(CLOCK_HZ / 1000 + 1);
  localparam integer MS_I = CLOCK_HZ / 1000 - 1;
  localparam [MSW-1:0] MS = MS_I[MSW-1:0];
  reg [MSW-1:0] ms_cnt;
  reg ms_tick;
  reg [5:0] act_ms;
  reg [8:0] err_ms;
  reg done_r, done_err_r;    // an answer (an ERROR) went out last cycle
  always @(posedge clk) begin
    if (rst) begin
      ms_cnt <= {MSW{1'b0}};
      ms_tick <= 1'b0;
      act_ms <= 6'd0;
      err_ms <= 9'd0;
      done_r <= 1'b0;
      done_err_r <= 1'b0;
    end else begin
      done_r <= g_end;
      done_err_r <= g_end && g_kind == K_ERROR;
      // ms_tick is high while ms_cnt == MS (compared a cycle ahead)
      ms_tick <= (ms_cnt == MS - 1'b1);
      ms_cnt <= ms_tick ? {MSW{1'b0}} : ms_cnt + 1'b1;
      if (done_r) act_ms <= 6'd50;
      else if (ms_tick && act_ms != 6'd0) act_ms <= act_ms - 1'b1;
      if (done_err_r) err_ms <= 9'd500;
      else if (ms_tick && err_ms != 9'd0) err_ms <= err_ms - 1'b1;
    end
  end
  assign led_activity = act_ms != 6'd0;
  assign led_error = err_ms != 9'd0;
endmodule
